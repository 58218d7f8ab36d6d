"""The no-skip check: a reader tails the log while four writers append, then counts.

The store's reader resumes from the last position it saw (`read_log(after=position)`); the
naive reader, for contrast, resumes from the last id it saw on the plain table (`id > last`),
which skips a row whose transaction took its id early but committed late.

After the writers stop, each reader keeps polling until it has passed the last row written:
the store may hold events back while any write transaction on the server is open, so an event
counts as skipped only once the reader has moved beyond it for good.
"""

from __future__ import annotations

import time
import uuid

import psycopg
from django.db import connection

from bench.scratch import EVENTS_TABLE, PLAIN_TABLE
from bench.writers import PlainWriter, StoreWriter, WriterRun
from eventsourcing_app.core.records import Position
from eventsourcing_app.wiring import get_event_store

WRITERS = 4
DRAIN_TIMEOUT = 30.0


class NaiveTail:
    """Follow the plain table by id: `WHERE id > last_id ORDER BY id`."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        row = conn.execute(f"SELECT coalesce(max(id), 0) FROM {PLAIN_TABLE}").fetchone()
        self.last_id = row[0]

    def poll(self) -> list[int]:
        rows = self.conn.execute(
            f"SELECT id FROM {PLAIN_TABLE} WHERE id > %s ORDER BY id LIMIT 1000", [self.last_id]
        ).fetchall()
        if rows:
            self.last_id = rows[-1][0]
        return [row[0] for row in rows]

    def end_of(self, aggregate_ids: list[uuid.UUID]) -> int:
        """Return the id of the last row the writers wrote."""
        return self.conn.execute(
            f"SELECT max(id) FROM {PLAIN_TABLE} WHERE aggregate_id = ANY(%s)", [aggregate_ids]
        ).fetchone()[0]

    def reached(self, end: int) -> bool:
        return self.last_id >= end


class StoreTail:
    """Follow the log through EventStore.read_log from the last position delivered."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.store = get_event_store()
        row = conn.execute(
            f"SELECT transaction_id, id FROM {EVENTS_TABLE} "
            "ORDER BY transaction_id DESC, id DESC LIMIT 1"
        ).fetchone()
        self.position = Position(*row) if row else Position(0, 0)

    def poll(self) -> list[int]:
        delivered = []
        for event in self.store.read_log(after=self.position):
            delivered.append(event.id)
            self.position = event.position
        return delivered

    def end_of(self, aggregate_ids: list[uuid.UUID]) -> Position:
        """Return the log position of the last event the writers appended."""
        row = self.conn.execute(
            f"SELECT transaction_id, id FROM {EVENTS_TABLE} WHERE aggregate_id = ANY(%s) "
            "ORDER BY transaction_id DESC, id DESC LIMIT 1",
            [aggregate_ids],
        ).fetchone()
        return Position(*row)

    def reached(self, end: Position) -> bool:
        return self.position >= end


def naive_tail_check(info: str, seconds: float) -> dict:
    """Tail the plain table by id while four plain writers insert one row per transaction."""
    with psycopg.connect(info, autocommit=True) as conn:
        tail = NaiveTail(conn)
        run = WriterRun([PlainWriter(info) for _ in range(WRITERS)], seconds)
        return _check(conn, PLAIN_TABLE, tail, run)


def store_tail_check(info: str, seconds: float) -> dict:
    """Tail the log through the store while four writers append one event per call."""
    with psycopg.connect(info, autocommit=True) as conn:
        tail = StoreTail(conn)
        run = WriterRun([StoreWriter() for _ in range(WRITERS)], seconds)
        try:
            return _check(conn, EVENTS_TABLE, tail, run)
        finally:
            connection.close()


def process_tail_check(info: str, seconds: float, pool) -> dict:
    """Tail the log through the store while the pool's writer processes append one event each."""
    from bench.processes import ProcessRun

    with psycopg.connect(info, autocommit=True) as conn:
        tail = StoreTail(conn)
        try:
            return _check(conn, EVENTS_TABLE, tail, ProcessRun(pool, seconds))
        finally:
            connection.close()


def _check(conn: psycopg.Connection, table: str, tail, run) -> dict:
    delivered: list[int] = []
    polls = 0
    run.start()
    while run.running():
        delivered += tail.poll()
        polls += 1
    rate = run.join()
    drain_began = time.perf_counter()
    delivered += _drain(tail, tail.end_of(run.aggregate_ids))
    written = _written_ids(conn, table, run)
    unique = set(delivered)
    return {
        "writers": len(run.aggregate_ids),
        "seconds": run.seconds,
        "writer_events_per_s": rate,
        "written": len(written),
        "delivered": len(delivered),
        "skipped": len(written - unique),
        "duplicates": len(delivered) - len(unique),
        "foreign": len(unique - written),
        "polls": polls,
        "drain_seconds": round(time.perf_counter() - drain_began, 3),
    }


def _drain(tail, end) -> list[int]:
    """Poll until the reader has passed `end`, the last row written; what it lacks then is lost."""
    delivered: list[int] = []
    deadline = time.perf_counter() + DRAIN_TIMEOUT
    while not tail.reached(end):
        if time.perf_counter() > deadline:
            raise RuntimeError(
                f"the reader did not reach the end of the log within {DRAIN_TIMEOUT:.0f} s: "
                "is a write transaction left open on the server?"
            )
        batch = tail.poll()
        if not batch:
            time.sleep(0.001)
        delivered += batch
    return delivered


def _written_ids(conn: psycopg.Connection, table: str, run) -> set[int]:
    rows = conn.execute(
        f"SELECT id FROM {table} WHERE aggregate_id = ANY(%s)", [run.aggregate_ids]
    ).fetchall()
    return {row[0] for row in rows}
