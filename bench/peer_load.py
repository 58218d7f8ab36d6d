"""Aggregate loads beside the peer's: `Repository.load` against the `eventsourcing` library's
`Application.repository.get`, the same counter, the same events, on the same server.

The store's side is `bench/loading.py`'s: a `bench.Counter` of `LOAD_EVENTS` (10,000) events
without a snapshot, and one with a snapshot `TAIL` (50) events before its end. The peer's side
is the library's own application API: an `Aggregate` subclass whose `increment` command is an
`@event`, saved by `Application.save`, loaded by `app.repository.get(id)`; the snapshotted one
with the library's snapshotting on and `app.take_snapshot(id, version)` at the same version.
Each load is checked to give the counter's total. Interleaved rounds (`bench.rounds`); the rows
are milliseconds a load (lower is better) and the store's rows' ratio is the peer's time over
the store's (above 1.00: the store is faster). The issue's targets: the store's plain load at
least twice as fast as the peer's (ratio >= 2.0), its snapshot load at least 0.9 of the peer's.

The library runs in the schema `bench_peer_load` of the peer database (`bench/peer.py` makes
that database), created at the start and dropped at the end.

Run alone: `DATABASE_URL=postgres://.../<scratch db> python -m bench.peer_load [--rounds N]`.
`bench/loading.py` needs Django set up: it is imported inside the functions that use it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import uuid
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from bench import report
from bench.environment import standalone

SCHEMA = "bench_peer_load"
ROW = "load 10,000 events"
PEER, STORE = "eventsourcing Application.repository.get", "store Repository.load"
TARGETS = {f"{STORE}, no snapshot": (">=", 2.0), f"{STORE}, snapshot at 9,950": (">=", 0.9)}


def peer_application() -> Any:
    """The library's application on the peer database, snapshotting on."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class PeerCounter(Aggregate):
        def __init__(self) -> None:
            self.total = 0

        @event("Incremented")
        def increment(self, by: int = 1) -> None:
            self.total += by

    class PeerCounters(Application):
        snapshotting_intervals = None  # snapshots only where the bench takes them

    from bench import peer

    info = peer.peer_conninfo(_scratch_info())
    params = conninfo_to_dict(info)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(params["dbname"]),
        "POSTGRES_HOST": str(params.get("host") or "localhost"),
        "POSTGRES_PORT": str(params.get("port") or "5432"),
        "POSTGRES_USER": str(params.get("user") or _user(info)),
        "POSTGRES_PASSWORD": str(params.get("password") or ""),
        "POSTGRES_SCHEMA": SCHEMA,
        "IS_SNAPSHOTTING_ENABLED": "y",
    }
    return PeerCounters(env=env), PeerCounter


@dataclasses.dataclass
class PeerFixture:
    app: Any
    full: uuid.UUID
    snapshotted: uuid.UUID


def build_peer(app: Any, counter_class: type) -> PeerFixture:
    from bench import loading

    def grow(events: int, snapshot_at: int | None) -> uuid.UUID:
        counter = counter_class()
        for _ in range(events - 1):  # the created event is the first of the stream
            counter.increment()
        app.save(counter)
        if snapshot_at is not None:
            app.take_snapshot(counter.id, version=snapshot_at)
        return counter.id

    tail = loading.TAIL
    return PeerFixture(app, grow(loading.LOAD_EVENTS, None),
                       grow(loading.LOAD_EVENTS, loading.LOAD_EVENTS - tail))  # fmt: skip


def peer_load_ms(fixture: PeerFixture, aggregate_id: uuid.UUID) -> float:
    from bench import loading

    began = time.perf_counter()
    counter = fixture.app.repository.get(aggregate_id)
    elapsed = time.perf_counter() - began
    if counter.total != loading.LOAD_EVENTS - 1:
        raise RuntimeError(f"the peer loaded a total of {counter.total}")
    return elapsed * 1000


def store_load_ms(fixture: Any, snapshotted: bool) -> float:
    from bench import loading

    if snapshotted:
        return loading.snapshot_load_ms(fixture.snapshotted, loading.LOAD_EVENTS)
    return loading.LOAD_EVENTS / loading.replay_rate(fixture) * 1000


def rows(rounds: int) -> list[dict]:
    """Build both sides, load each in interleaved rounds; return four rows in ms."""
    from bench import loading

    _schema("DROP SCHEMA IF EXISTS {} CASCADE", "CREATE SCHEMA {}")
    app, counter_class = peer_application()
    try:
        peer_fixture = build_peer(app, counter_class)
        store_fixture = loading.prepare()
        runs = {
            f"{PEER}, no snapshot": lambda: peer_load_ms(peer_fixture, peer_fixture.full),
            f"{STORE}, no snapshot": lambda: store_load_ms(store_fixture, False),
            f"{PEER}, snapshot at 9,950": lambda: peer_load_ms(
                peer_fixture, peer_fixture.snapshotted
            ),
            f"{STORE}, snapshot at 9,950": lambda: store_load_ms(store_fixture, True),
        }
        samples: dict[str, list[float]] = {name: [] for name in runs}
        for number in range(rounds):
            names = list(runs)
            shift = number % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(runs[name]())
    finally:
        app.close()
        _schema("DROP SCHEMA IF EXISTS {} CASCADE")
    measured = {name: report.summarise(f"{ROW}: {name}", values, None, unit="ms")
                for name, values in samples.items()}  # fmt: skip
    for name, row in measured.items():
        if name.startswith(STORE):
            peer_row = measured[name.replace(STORE, PEER)]
            # Lower is better: the ratio is the peer's time over the store's.
            row["ratio"] = round(peer_row["value"] / row["value"], 3)
            row["note"] = f"vs {peer_row['variant']}: the peer's time over the store's"
    return list(measured.values())


def add_targets(measured: list[dict]) -> None:
    report.add_targets(measured, {f"{ROW}: {name}": target for name, target in TARGETS.items()})


def _scratch_info() -> str:
    from bench import scratch

    return scratch.conninfo()


def _user(info: str) -> str:
    with psycopg.connect(info, autocommit=True) as conn:
        return conn.execute("SELECT current_user").fetchone()[0]


def _schema(*statements: str) -> None:
    from bench import peer

    info = _scratch_info()
    peer.prepare_database(info)
    with psycopg.connect(peer.peer_conninfo(info), autocommit=True) as conn:
        for statement in statements:
            conn.execute(sql.SQL(statement).format(sql.Identifier(SCHEMA)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default: 5)")
    args = parser.parse_args(argv)

    def measure(_info: str) -> list[dict]:
        measured = rows(args.rounds)
        add_targets(measured)
        return measured

    def tidy_up() -> None:
        from bench import loading

        loading.tidy_up()

    return standalone(measure, tidy_up)


if __name__ == "__main__":
    sys.exit(main())
