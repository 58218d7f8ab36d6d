"""Log readers: EventStore.read_log against a plain keyset read of the same events table."""

from __future__ import annotations

import time
import uuid

import psycopg

from bench.scratch import AGGREGATE_TYPE, EVENT_TYPE, EVENTS_TABLE
from eventsourcing_app.backends.base import COLUMNS
from eventsourcing_app.core.records import START, NewEvent
from eventsourcing_app.wiring import get_event_store

KEYSET_BATCH = 1000
FILL_BATCH = 500
KEYSET_SQL = f"SELECT {COLUMNS} FROM {EVENTS_TABLE} WHERE id > %s ORDER BY id LIMIT %s"


def fill_log(events: int) -> None:
    """Append benchmark events until the log holds at least `events`."""
    store = get_event_store()
    missing = events - store.recorder.count()
    while missing > 0:
        size = min(FILL_BATCH, missing)
        batch = [NewEvent(EVENT_TYPE, {"n": n, "amount": "10.00"}) for n in range(1, size + 1)]
        store.append(uuid.uuid4(), batch, expected_version=0, aggregate_type=AGGREGATE_TYPE)
        missing -= size


def store_read_rate(events: int) -> float:
    """Read the first `events` of the log through EventStore.read_log; return events/s."""
    store = get_event_store()
    began = time.perf_counter()
    count = sum(1 for _ in store.read_log(START, limit=events))
    return _rate(count, events, began)


def plain_read_rate(info: str, events: int) -> float:
    """Read the first `events` rows of the events table by id, 1000 a query; return events/s."""
    with psycopg.connect(info, autocommit=True) as conn:
        began = time.perf_counter()
        count, last_id = 0, 0
        while count < events:
            rows = conn.execute(KEYSET_SQL, [last_id, min(KEYSET_BATCH, events - count)]).fetchall()
            if not rows:
                break
            count += len(rows)
            last_id = rows[-1][0]
        return _rate(count, events, began)


def _rate(count: int, wanted: int, began: float) -> float:
    elapsed = time.perf_counter() - began
    if count != wanted:
        raise RuntimeError(
            f"read {count} events where {wanted} were expected: is a write transaction left "
            "open on the server? (the store's log read waits for every older one)"
        )
    return count / elapsed
