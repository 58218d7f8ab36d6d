"""The peer: the `eventsourcing` library (PyPI) on PostgreSQL, doing the same jobs as the store.

The library runs on a database of its own next to the scratch database (`<name>_peer`, created
when missing), in a schema of its own (`bench_peer`), which this module drops and recreates at
the start of a run and drops at the end. The library is configured through its documented
environment dict (PERSISTENCE_MODULE=eventsourcing.postgres, POSTGRES_*), passed to
`InfrastructureFactory.construct()`, never read from the process environment.

Writes go through the public recorder API, `ApplicationRecorder.insert_events()`, with the
event's state serialised by the library's `JSONTranscoder` on every call. Reads go through
`ApplicationRecorder.select_notifications()`, 1000 a query, each state decoded back to a dict.
Install the library with `pip install -r bench/requirements.txt`.
"""

from __future__ import annotations

import time
import uuid
from importlib import metadata

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bench.scratch import EVENT_TYPE

PEER_SCHEMA = "bench_peer"
PEER_NAME = "bench_peer"  # the library names its table after it: bench_peer_events
PEER_TABLE = f"{PEER_NAME}_events"
DROP_SCHEMA = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(PEER_SCHEMA))
READ_BATCH = 1000
FILL_BATCH = 500
MISSING = (
    "the eventsourcing library is not installed: run `pip install -r bench/requirements.txt` "
    "(benchmark-only dependencies, pinned)"
)


def event_data(number: int) -> dict:
    return {"n": number, "amount": "10.00"}


def versions() -> dict:
    return {name: metadata.version(name) for name in ("eventsourcing", "psycopg-pool")}


class Peer:
    """The library's application recorder and transcoder on the peer database."""

    def __init__(self, info: str) -> None:
        from eventsourcing.persistence import InfrastructureFactory, JSONTranscoder
        from eventsourcing.utils import Environment

        self.info = peer_conninfo(info)
        params = conninfo_to_dict(self.info)
        with psycopg.connect(self.info, autocommit=True) as conn:
            user = conn.execute("SELECT current_user").fetchone()[0]
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": str(params["dbname"]),
            "POSTGRES_HOST": str(params.get("host") or "localhost"),
            "POSTGRES_PORT": str(params.get("port") or "5432"),
            "POSTGRES_USER": str(params.get("user") or user),
            "POSTGRES_PASSWORD": str(params.get("password") or ""),
            "POSTGRES_SCHEMA": PEER_SCHEMA,
        }
        self.factory = InfrastructureFactory.construct(Environment(PEER_NAME, env))
        self.recorder = self.factory.application_recorder()  # creates the table
        self.transcoder = JSONTranscoder()

    def close(self) -> None:
        self.factory.close()


def peer_conninfo(info: str) -> str:
    """Return the connection string of the peer database: the scratch database's name + _peer."""
    params = conninfo_to_dict(info)
    return make_conninfo(**{**params, "dbname": f"{params['dbname']}_peer"})


def prepare_database(info: str) -> str:
    """Create the peer database if missing (the library must be installed); return its name."""
    try:
        import eventsourcing.postgres  # noqa: F401  (needs psycopg and psycopg-pool)
    except ImportError:
        raise SystemExit(MISSING) from None
    params = conninfo_to_dict(info)
    name = f"{params['dbname']}_peer"
    maintenance = make_conninfo(**{**params, "dbname": "postgres"})
    with psycopg.connect(maintenance, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def prepare(info: str) -> Peer:
    """Create the peer database if missing, start from an empty schema, construct the peer."""
    name = prepare_database(info)
    with psycopg.connect(peer_conninfo(info), autocommit=True) as conn:
        _refuse_foreign_tables(conn, name)
        conn.execute(DROP_SCHEMA)
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(PEER_SCHEMA)))
    return Peer(info)


def _refuse_foreign_tables(conn: psycopg.Connection, name: str) -> None:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = %s AND table_name <> %s",
        [PEER_SCHEMA, PEER_TABLE],
    ).fetchall()
    if rows:
        raise SystemExit(
            f"schema {PEER_SCHEMA!r} of database {name!r} holds tables the benchmark did not "
            f"create ({', '.join(row[0] for row in rows)}), and the benchmark drops that schema."
        )


def tidy_up(peer: Peer | None, info: str) -> None:
    """Close the library's connections and drop its schema, leaving the peer database empty."""
    if peer is not None:
        peer.close()
    with psycopg.connect(peer_conninfo(info), autocommit=True) as conn:
        conn.execute(DROP_SCHEMA)


class PeerWriter:
    """Insert `batch` stored events per call through the library's `insert_events()`."""

    def __init__(self, peer: Peer, batch: int = 1) -> None:
        from eventsourcing.persistence import StoredEvent

        self.stored_event = StoredEvent
        self.peer = peer
        self.batch = batch
        self.aggregate_id = uuid.uuid4()
        self.version = 0

    def open(self) -> None:
        with self.peer.recorder.datastore.get_connection():
            pass  # the library's pool is open and holds a connection

    def step(self) -> int:
        encode = self.peer.transcoder.encode
        events = [
            self.stored_event(
                originator_id=self.aggregate_id,
                originator_version=version,
                topic=EVENT_TYPE,
                state=encode(event_data(version)),
            )
            for version in range(self.version + 1, self.version + self.batch + 1)
        ]
        self.peer.recorder.insert_events(events)
        self.version += self.batch
        return self.batch

    def close(self) -> None:
        pass  # the pool belongs to the peer, closed by tidy_up()


def fill_log(peer: Peer, events: int) -> None:
    """Insert events until the library's notification log holds at least `events`."""
    missing = events - (peer.recorder.max_notification_id() or 0)
    while missing > 0:
        size = min(FILL_BATCH, missing)
        writer = PeerWriter(peer, size)
        writer.step()
        missing -= size


def read_rate(peer: Peer, events: int) -> float:
    """Read the first `events` notifications in order, 1000 a query, decoded; return events/s."""
    decode = peer.transcoder.decode
    began = time.perf_counter()
    count, start = 0, 1
    while count < events:
        notifications = peer.recorder.select_notifications(start, min(READ_BATCH, events - count))
        if not notifications:
            break
        for notification in notifications:
            decode(notification.state)
        count += len(notifications)
        start = notifications[-1].id + 1
    elapsed = time.perf_counter() - began
    if count != events:
        raise RuntimeError(f"the peer read {count} notifications where {events} were expected")
    return count / elapsed
