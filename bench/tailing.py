"""The no-skip check: a reader tails the log while four writers append, then counts.

The store's reader resumes from the last position it saw (`read_log(after=position)`); the
naive reader, for contrast, resumes from the last id it saw on the plain table (`id > last`),
which skips a row whose transaction took its id early but committed late.
"""

from __future__ import annotations

import psycopg
from django.db import connection

from bench.scratch import EVENTS_TABLE, PLAIN_TABLE
from bench.writers import PlainWriter, StoreWriter, WriterRun
from eventsourcing_app.default_store import get_event_store
from eventsourcing_app.records import Position

WRITERS = 4


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


class StoreTail:
    """Follow the log through EventStore.read_log from the last position delivered."""

    def __init__(self, conn: psycopg.Connection) -> None:
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


def _check(conn: psycopg.Connection, table: str, tail, run: WriterRun) -> dict:
    delivered: list[int] = []
    polls = 0
    run.start()
    while run.running():
        delivered += tail.poll()
        polls += 1
    rate = run.join()
    delivered += tail.poll()  # every writer has committed: what is still missing stays missing
    written = _written_ids(conn, table, run)
    unique = set(delivered)
    return {
        "writers": WRITERS,
        "seconds": run.seconds,
        "writer_events_per_s": rate,
        "written": len(written),
        "delivered": len(delivered),
        "skipped": len(written - unique),
        "duplicates": len(delivered) - len(unique),
        "foreign": len(unique - written),
        "polls": polls,
    }


def _written_ids(conn: psycopg.Connection, table: str, run: WriterRun) -> set[int]:
    rows = conn.execute(
        f"SELECT id FROM {table} WHERE aggregate_id = ANY(%s)", [run.aggregate_ids]
    ).fetchall()
    return {row[0] for row in rows}
