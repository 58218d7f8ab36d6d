"""The SQLite variants: plain sqlite3, the event store and the `eventsourcing` library on files.

Imported only in the subprocess `bench/on_sqlite.py` starts, after Django is set up on a fresh
SQLite file. Measured, interleaved over rounds as `bench.rounds.measure` does:

- plain insert, 1 and 100 rows a transaction: the `sqlite3` module on its own connection, one
  `BEGIN IMMEDIATE`, one `INSERT` and `COMMIT`, into `bench_plain` in the store's file
  (the baseline of the writes below);
- store append, 1 and 100 events a call: `EventStore.append()` through Django;
- eventsourcing insert_events, 1 and 100 events a call: the library's SQLite
  `ApplicationRecorder.insert_events()`, in a file of its own;
- plain keyset read of the first N rows of the store's `events` table, 1000 a query, its two
  JSON columns decoded as psycopg decodes `jsonb` (the baseline of the reads below);
- store read_log and eventsourcing select_notifications over their first N events.

All three systems run with the journal mode and synchronous setting read back from Django's
connection; the run refuses to report if any of them ends up with others.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sqlite3
import time
import uuid
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import django
from django.core.management import call_command
from django.db import connection, connections
from eventsourcing.persistence import InfrastructureFactory, JSONTranscoder
from eventsourcing.sqlite import SQLiteConnectionPool
from eventsourcing.utils import Environment

from bench import peer, readers, report, rounds
from bench.rounds import BATCH, Config, Variant, writers
from bench.scratch import EVENTS_TABLE, PLAIN_TABLE
from bench.writers import StoreWriter, event_data
from eventsourcing_app.backends.base import COLUMNS

READ_EVENTS = {True: 10_000, False: 100_000}  # by `quick`
KEYSET_BATCH = 1000
JSON_COLUMNS = (7, 8)  # event_data and metadata in COLUMNS
LIBRARY_FILE = "eventsourcing.sqlite3"
SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
# `bench_plain` as on PostgreSQL; a UUID is stored as Django stores it on SQLite (32 hex
# characters) and JSON as Django's JSONField stores it (text, checked by json_valid).
CREATE_PLAIN = f"""
CREATE TABLE {PLAIN_TABLE} (
    id integer PRIMARY KEY,
    aggregate_id text NOT NULL,
    version int NOT NULL,
    data text NOT NULL CHECK (json_valid(data)),
    UNIQUE (aggregate_id, version)
)
"""
KEYSET_SQL = f"SELECT {COLUMNS} FROM {EVENTS_TABLE} WHERE id > ? ORDER BY id LIMIT ?"


@dataclass(frozen=True)
class Pragmas:
    """The connection settings that decide what a commit costs."""

    journal_mode: str
    synchronous: str

    def statements(self) -> list[str]:
        return [
            f"PRAGMA journal_mode={self.journal_mode}",
            f"PRAGMA synchronous={self.synchronous}",
        ]


def read_pragmas(cursor: Any) -> Pragmas:
    """Return the journal mode and synchronous setting of the connection behind `cursor`.

    `cursor` is any DB-API cursor on SQLite: Django's, the sqlite3 module's or the library's.
    """
    cursor.execute("PRAGMA journal_mode")
    journal_mode = cursor.fetchone()[0].lower()
    cursor.execute("PRAGMA synchronous")
    return Pragmas(journal_mode, SYNCHRONOUS[cursor.fetchone()[0]])


def django_pragmas() -> Pragmas:
    with connection.cursor() as cursor:
        return read_pragmas(cursor)


def connect(path: Path, pragmas: Pragmas) -> sqlite3.Connection:
    """Open a plain connection in autocommit mode: each transaction is begun explicitly."""
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in pragmas.statements():
        conn.execute(statement)
    return conn


def create_plain(path: Path, pragmas: Pragmas) -> None:
    conn = connect(path, pragmas)
    try:
        conn.execute(CREATE_PLAIN)
    finally:
        conn.close()


class PlainWriter:
    """Insert `batch` rows per transaction into the plain table on its own sqlite3 connection."""

    def __init__(self, path: Path, pragmas: Pragmas, batch: int = 1) -> None:
        self.path = path
        self.pragmas = pragmas
        self.batch = batch
        self.aggregate_id = uuid.uuid4()
        self.version = 0
        rows = ", ".join(["(?, ?, ?)"] * batch)
        self.sql = f"INSERT INTO {PLAIN_TABLE} (aggregate_id, version, data) VALUES {rows}"

    def open(self) -> None:
        self.conn = connect(self.path, self.pragmas)

    def step(self) -> int:
        params: list = []
        for version in range(self.version + 1, self.version + self.batch + 1):
            params += (self.aggregate_id.hex, version, json.dumps(event_data(version)))
        # IMMEDIATE, as the project's settings begin Django's transactions on SQLite.
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute(self.sql, params)
        self.conn.execute("COMMIT")
        self.version += self.batch
        return self.batch

    def close(self) -> None:
        self.conn.close()


def plain_read_rate(path: Path, pragmas: Pragmas, events: int) -> float:
    """Read the first `events` rows of the events table by id, 1000 a query; return events/s."""
    conn = connect(path, pragmas)
    try:
        began = time.perf_counter()
        count, last_id = 0, 0
        while count < events:
            rows = conn.execute(KEYSET_SQL, (last_id, min(KEYSET_BATCH, events - count))).fetchall()
            if not rows:
                break
            for row in rows:
                for column in JSON_COLUMNS:
                    json.loads(row[column])
            count += len(rows)
            last_id = rows[-1][0]
        elapsed = time.perf_counter() - began
    finally:
        conn.close()
    if count != events:
        raise RuntimeError(f"the plain read got {count} rows where {events} were expected")
    return count / elapsed


class Library:
    """The library's SQLite application recorder, in its own file, on the store's pragmas.

    Configured as its documentation describes (PERSISTENCE_MODULE=eventsourcing.sqlite and
    SQLITE_DBNAME, handed to `InfrastructureFactory.construct()`). The library turns WAL on
    itself but has no setting for `synchronous`, so every connection its pool opens gets the
    store's pragmas as it is created.
    """

    def __init__(self, path: Path, pragmas: Pragmas) -> None:
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
        self.factory = InfrastructureFactory.construct(Environment(peer.PEER_NAME, env))
        self.datastore = self.factory.datastore
        _set_pragmas_on_connect(self.datastore.pool, pragmas)
        self.recorder = self.factory.application_recorder()  # creates the table
        self.transcoder = JSONTranscoder()

    def pragmas(self) -> Pragmas:
        with self.datastore.get_connection(commit=False) as conn, conn.cursor() as cursor:
            return read_pragmas(cursor)

    def close(self) -> None:
        self.factory.close()


def _set_pragmas_on_connect(pool: SQLiteConnectionPool, pragmas: Pragmas) -> None:
    # The pool's one hook for new connections is private; wrapping it beats a subclass of the
    # datastore, the pool and the factory for one PRAGMA.
    create = pool._create_connection

    def create_with_pragmas():
        conn = create()
        with conn.cursor() as cursor:
            for statement in pragmas.statements():
                cursor.execute(statement)
        return conn

    pool._create_connection = create_with_pragmas


class LibraryWriter(peer.PeerWriter):
    """`peer.PeerWriter` on the library's SQLite datastore, whose connections are per role."""

    def open(self) -> None:
        with self.peer.datastore.get_connection(commit=True):
            pass  # the pool is open and holds a writer's connection


def build_variants(database: Path, pragmas: Pragmas, library: Library) -> list[Variant]:
    plain_1, plain_batch = "plain insert, 1 writer", f"plain insert {BATCH}/txn, 1 writer"
    plain_read = "plain keyset read"
    return [
        Variant(plain_1, writers(lambda: PlainWriter(database, pragmas), 1)),
        Variant("store append 1/call, 1 writer", writers(StoreWriter, 1), plain_1),
        Variant(
            "eventsourcing insert_events 1/call, 1 writer",
            writers(lambda: LibraryWriter(library), 1),
            plain_1,
        ),
        Variant(plain_batch, writers(lambda: PlainWriter(database, pragmas, BATCH), 1)),
        Variant(
            f"store append {BATCH}/call, 1 writer",
            writers(lambda: StoreWriter(BATCH), 1),
            plain_batch,
        ),
        Variant(
            f"eventsourcing insert_events {BATCH}/call, 1 writer",
            writers(lambda: LibraryWriter(library, BATCH), 1),
            plain_batch,
        ),
        Variant(plain_read, lambda _s, events: plain_read_rate(database, pragmas, events)),
        Variant("store read_log", lambda _s, events: readers.store_read_rate(events), plain_read),
        Variant(
            "eventsourcing select_notifications",
            lambda _s, events: peer.read_rate(library, events),
            plain_read,
        ),
    ]


def checked_pragmas(database: Path, library: Library) -> Pragmas:
    """Return the pragmas all three systems run with; refuse to go on if they differ."""
    store = django_pragmas()
    plain = connect(database, store)
    try:
        seen = {"store": store, "plain": read_pragmas(plain.cursor()), "library": library.pragmas()}
    finally:
        plain.close()
    if len(set(seen.values())) != 1:
        raise RuntimeError(f"the SQLite connections differ: {seen}")
    return store


def environment(config: Config, quick: bool, pragmas: Pragmas) -> dict:
    return {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "config": asdict(config),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "eventsourcing": metadata.version("eventsourcing"),
        "sqlite": {
            "version": sqlite3.sqlite_version,
            **asdict(pragmas),
            "transaction_mode": connection.transaction_mode,
        },
    }


def run(folder: Path, quick: bool) -> dict:
    """Migrate Django's SQLite file, measure every variant, return the rows and the setting."""
    config = replace(rounds.QUICK if quick else rounds.FULL, read_events=READ_EVENTS[quick])
    call_command("migrate", verbosity=0, interactive=False)
    database = Path(connection.settings_dict["NAME"])
    configured = django_pragmas()
    create_plain(database, configured)
    library = Library(folder / LIBRARY_FILE, configured)
    try:
        pragmas = checked_pragmas(database, library)
        meta = environment(config, quick, pragmas)
        rounds.progress(f"sqlite: filling the logs with {config.read_events:,} events")
        readers.fill_log(config.read_events)
        peer.fill_log(library, config.read_events)
        variants = build_variants(database, pragmas, library)
        samples = rounds.measure(variants, config, "sqlite round")
        rows = [rounds.summarise_variant(variant, samples) for variant in variants]
        report.add_ratios(rows)
    finally:
        library.close()
        connections.close_all()
    return {"environment": meta, "results": rows}
