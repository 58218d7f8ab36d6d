"""The scratch database: migrate it, check it holds only benchmark events, empty it, tidy up."""

from __future__ import annotations

import psycopg
from django.core.management import call_command
from django.db import connection
from psycopg.conninfo import make_conninfo

from eventsourcing_app.models import Event, PersonalDataKey

AGGREGATE_TYPE = "bench.Thing"
EVENT_TYPE = "bench.Happened"
PLAIN_TABLE = "bench_plain"
# Created in a database the benchmark has taken over (its events table was empty then): from then
# on its events are the benchmark's, whatever their types, and may be emptied.
MARKER_TABLE = "bench_scratch_marker"
EVENTS_TABLE = Event._meta.db_table
KEYS_TABLE = PersonalDataKey._meta.db_table

CREATE_PLAIN = f"""
CREATE TABLE {PLAIN_TABLE} (
    id bigserial PRIMARY KEY,
    aggregate_id uuid NOT NULL,
    version int NOT NULL,
    data jsonb NOT NULL,
    UNIQUE (aggregate_id, version)
)
"""


def conninfo() -> str:
    """Return a libpq connection string for the database Django uses."""
    settings = connection.settings_dict
    params = {
        "dbname": settings["NAME"],
        "user": settings["USER"],
        "password": settings["PASSWORD"],
        "host": settings["HOST"],
        "port": settings["PORT"],
    }
    return make_conninfo(**{key: str(value) for key, value in params.items() if value})


def admin_connection(info: str) -> psycopg.Connection:
    return psycopg.connect(info, autocommit=True)


def prepare(info: str) -> None:
    """Migrate, refuse a database with foreign events, then start from empty tables."""
    if connection.vendor != "postgresql":
        raise SystemExit(f"Django uses {connection.vendor}; bench/run.py measures PostgreSQL.")
    call_command("migrate", verbosity=0, interactive=False)
    with admin_connection(info) as conn:
        _refuse_foreign_events(conn)
        empty(conn)


def _refuse_foreign_events(conn: psycopg.Connection) -> None:
    """Take over a database whose events table is empty; refuse one holding others' events."""
    marked = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [MARKER_TABLE]).fetchone()[0]
    if marked:
        return
    if conn.execute(f"SELECT EXISTS (SELECT 1 FROM {EVENTS_TABLE})").fetchone()[0]:
        raise SystemExit(
            f"{connection.settings_dict['NAME']!r} holds events the benchmark did not write, "
            "and the benchmark empties the events table: point DATABASE_URL at a scratch "
            "database."
        )
    conn.execute(f"CREATE TABLE {MARKER_TABLE} (taken_at timestamptz DEFAULT now())")


def empty(conn: psycopg.Connection) -> None:
    """Empty the events table (it holds benchmark events only) and the data keys of their
    subjects, and recreate the plain table.

    The keys go too: each run wraps its keys with a master key of its own, and the bank log's
    accounts have the same ids run after run, so a key left by an earlier run could not be
    unwrapped by the next."""
    with conn.transaction():
        conn.execute("SET LOCAL eventsourcing.allow_truncate = 'on'")
        conn.execute(f"TRUNCATE {EVENTS_TABLE}")
        conn.execute(f"DELETE FROM {KEYS_TABLE}")
    conn.execute(f"DROP TABLE IF EXISTS {PLAIN_TABLE}")
    conn.execute(CREATE_PLAIN)


def tidy_up(info: str) -> None:
    """Leave no benchmark rows behind: empty the events table and drop the plain table."""
    with admin_connection(info) as conn:
        empty(conn)
        conn.execute(f"DROP TABLE {PLAIN_TABLE}")


def server_facts(info: str) -> dict:
    """Return the server settings that decide write speed."""
    with admin_connection(info) as conn:
        names = ("server_version", "fsync", "synchronous_commit", "shared_buffers")
        return {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in names}
