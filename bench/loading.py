"""Load an aggregate through the project's Repository, with and without a snapshot.

One bench aggregate (`bench.Counter`) gets `LOAD_EVENTS` events (10,000), appended through
`Repository.save` in batches of `SAVE_BATCH`. A second one gets the same events plus a snapshot
near its end (at `LOAD_EVENTS - TAIL`), then `TAIL` more events; a third is small (`SMALL_EVENTS`
events, snapshot at `SMALL_EVENTS - TAIL`), so both snapshot loads replay the same `TAIL` events
and only the stream length differs. A flat load curve means those two take the same time. A
fourth one, built only when asked (`big_events`, 100,000 in the default run), has a snapshot at
`big_events - TAIL` too: the load at 100 events against the load at 100,000.

Baseline of the full replay: a plain psycopg keyset read of the same 10,000 rows (the store's
columns, 1000 a query), which is what any load has to fetch and decode from the server.
"""

from __future__ import annotations

import dataclasses
import time
import uuid

import psycopg

from bench.scratch import EVENTS_TABLE
from eventsourcing_app.backends.base import COLUMNS
from eventsourcing_app.backends.snapshots import DjangoSnapshotStore
from eventsourcing_app.core.repository import Repository
from eventsourcing_app.domain import Aggregate, DomainEvent, applies, event_type
from eventsourcing_app.wiring import get_event_store

COUNTER_TYPE = "bench.Counter"
LOAD_EVENTS = 10_000
SMALL_EVENTS = 100
TAIL = 50  # events after the snapshot
SAVE_BATCH = 1000
SNAPSHOT_INTERVAL = 100
KEYSET_BATCH = 1000
STREAM_SQL = (
    f"SELECT {COLUMNS} FROM {EVENTS_TABLE} "
    "WHERE aggregate_id = %s AND version > %s ORDER BY version LIMIT %s"
)


@event_type("bench.Incremented")
@dataclasses.dataclass(frozen=True)
class Incremented(DomainEvent):
    by: int


class Counter(Aggregate, type_name=COUNTER_TYPE):
    def __init__(self, id: uuid.UUID) -> None:
        super().__init__(id)
        self.total = 0

    def increment(self, by: int = 1) -> None:
        self.record(Incremented(by))

    @applies(Incremented)
    def _incremented(self, event: Incremented) -> None:
        self.total += event.by


@dataclasses.dataclass(frozen=True)
class LoadFixture:
    full: uuid.UUID  # LOAD_EVENTS events, no snapshot
    snapshotted: uuid.UUID  # LOAD_EVENTS events, snapshot at LOAD_EVENTS - TAIL
    small: uuid.UUID  # SMALL_EVENTS events, snapshot at SMALL_EVENTS - TAIL
    big: uuid.UUID | None = None  # big_events events, snapshot at big_events - TAIL
    big_events: int = 0


def plain_repository() -> Repository[Counter]:
    return Repository(Counter, get_event_store())


def snapshot_repository() -> Repository[Counter]:
    return Repository(
        Counter,
        get_event_store(),
        snapshots=DjangoSnapshotStore(),
        snapshot_interval=SNAPSHOT_INTERVAL,
    )


def _grow(repository: Repository[Counter], counter: Counter, events: int) -> None:
    """Record `events` increments and save them, `SAVE_BATCH` a call."""
    while events > 0:
        size = min(SAVE_BATCH, events)
        for _ in range(size):
            counter.increment()
        repository.save(counter)
        events -= size


def build(events: int, snapshot_at: int | None) -> uuid.UUID:
    """Create a counter with `events` events, with a snapshot at `snapshot_at` if given."""
    repository = plain_repository()  # saves never write a snapshot on their own
    counter = Counter(uuid.uuid4())
    _grow(repository, counter, snapshot_at or events)
    if snapshot_at is not None:
        snapshot_repository().write_snapshot(counter)
        _grow(repository, counter, events - snapshot_at)
    if counter.version != events or counter.total != events:
        raise RuntimeError(f"built a counter at v{counter.version} where {events} were meant")
    return counter.id


def prepare(big_events: int = 0) -> LoadFixture:
    return LoadFixture(
        full=build(LOAD_EVENTS, None),
        snapshotted=build(LOAD_EVENTS, LOAD_EVENTS - TAIL),
        small=build(SMALL_EVENTS, SMALL_EVENTS - TAIL),
        big=build(big_events, big_events - TAIL) if big_events else None,
        big_events=big_events,
    )


def tidy_up() -> int:
    """Delete the bench counters' snapshots (their events go with the events table)."""
    return DjangoSnapshotStore().purge(COUNTER_TYPE)


def _load(repository: Repository[Counter], aggregate_id: uuid.UUID, events: int) -> float:
    """Load the counter once; return the seconds it took."""
    began = time.perf_counter()
    counter = repository.load(aggregate_id)
    elapsed = time.perf_counter() - began
    if counter.version != events or counter.total != events:
        raise RuntimeError(f"loaded v{counter.version} (total {counter.total}), not v{events}")
    return elapsed


def replay_rate(fixture: LoadFixture) -> float:
    """Load the 10,000-event counter without snapshots; return events/s of the replay."""
    return LOAD_EVENTS / _load(plain_repository(), fixture.full, LOAD_EVENTS)


def snapshot_load_ms(aggregate_id: uuid.UUID, events: int) -> float:
    """Load a snapshotted counter (snapshot + TAIL events); return milliseconds."""
    return _load(snapshot_repository(), aggregate_id, events) * 1000


def store_stream_rate(fixture: LoadFixture) -> float:
    """Read the 10,000-event stream through EventStore.read_stream; return events/s."""
    store = get_event_store()
    began = time.perf_counter()
    count = sum(1 for _ in store.read_stream(fixture.full))
    return _rate(count, began)


def plain_stream_rate(info: str, fixture: LoadFixture) -> float:
    """Read the same 10,000 rows by (aggregate_id, version), 1000 a query; return events/s."""
    with psycopg.connect(info, autocommit=True) as conn:
        began = time.perf_counter()
        count, last = 0, 0
        while True:
            rows = conn.execute(STREAM_SQL, [fixture.full, last, KEYSET_BATCH]).fetchall()
            count += len(rows)
            if len(rows) < KEYSET_BATCH:
                break
            last += len(rows)
        return _rate(count, began)


def _rate(count: int, began: float) -> float:
    elapsed = time.perf_counter() - began
    if count != LOAD_EVENTS:
        raise RuntimeError(f"read {count} events where {LOAD_EVENTS} were expected")
    return count / elapsed
