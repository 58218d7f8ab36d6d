"""The PostgreSQL recorder: appends in one prepared statement, a log that never skips, NOTIFY.

On PostgreSQL the statements go straight to psycopg with server-side binding, so the server
prepares them once per connection, and an append of any size is one
`INSERT ... SELECT FROM jsonb_to_recordset(...)` (`jsonb`: the rows' text is parsed once, where
`json` is parsed again for each row's data and metadata, about 2 us a row more here). Ids are
handed out before commit, so each event records its writing transaction and the log is read in
(transaction, id) order, only below the oldest transaction still open. Followers sleep on LISTEN
and are woken by a NOTIFY sent once an append has committed.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar

import psycopg
from django.db import IntegrityError, connections, transaction
from psycopg.pq import Format
from psycopg.types.json import JsonbBinaryLoader

from eventsourcing_app import conf
from eventsourcing_app.backends.base import (
    INSERT_INTO,
    PREDECESSOR_CHECK,
    UNIQUE_CONSTRAINT,
    DjangoRecorder,
    dumps,
)
from eventsourcing_app.backends.statements import NEVER_AUTOMATICALLY
from eventsourcing_app.core.hashchain import json_name
from eventsourcing_app.core.jsontext import loads
from eventsourcing_app.core.records import EventRecord, Position, StoredEvent

logger = logging.getLogger("eventsourcing.following")
NOTIFY_CHANNEL = "eventsourcing_events"  # log followers LISTEN on it
ANNOUNCER_NAME = "eventsourcing-notify"  # the announcers' sessions, as pg_stat_activity shows them
# Makes the server read the list of sessions (pg_stat_activity) for the rest of the transaction.
TAKE_SESSIONS = "SELECT count(*) FROM pg_stat_get_backend_idset()"
T = TypeVar("T")
JSONB_OID = psycopg.postgres.types["jsonb"].oid
# All rows travel as one JSON document that the server unpacks, so the statement is the same for
# any number of events (prepared once) and nothing is escaped twice on the client.
# `transaction_id` orders the log. A transaction's id is taken at its first write, so one that
# wrote elsewhere first (a saga's batch) can append to a stream after a younger transaction did:
# the new events take the predecessor's transaction id when it is the larger, so that a stream's
# events always come in version order. Still never below the writer's own id, so a reader bounded
# by the oldest running transaction cannot pass them before they commit.
POSTGRESQL_INSERT = (
    INSERT_INTO.replace("previous_hash)", "previous_hash, transaction_id)")
    + "SELECT %s::uuid, %s::varchar, e.event_type, e.version, e.schema_version, e.event_data, "
    "e.metadata, %s::timestamptz, e.hash, e.previous_hash, greatest("
    "(pg_current_xact_id()::text)::bigint, (SELECT transaction_id FROM {table} "
    "WHERE aggregate_id = %s::uuid AND version = %s::int)) "
    "FROM jsonb_to_recordset(%s::jsonb) AS e(event_type varchar, version int, "
    "schema_version smallint, event_data jsonb, metadata jsonb, hash varchar, "
    "previous_hash varchar) "
    + PREDECESSOR_CHECK.format(
        genesis="%s::boolean",
        table="{table}",
        param_uuid="%s::uuid",
        param_int="%s::int",
        param="%s::varchar",
    )
    + " RETURNING version, id, transaction_id"
)

# Rows of transactions still open may carry smaller ids than rows already visible: read only
# below the oldest transaction still in progress, so that no row can ever appear behind a
# reader. Transactions seen running in *other* databases of the server cannot write here and
# do not hold readers back (when this role may see them; otherwise they count, to be safe).
# A reader that holds a transaction id itself (a worker's batch, from its checkpoint's row lock)
# reads below that id too: what it appends then comes after all it read, never behind the
# checkpoint it moves (its own id is not in its snapshot's list of running transactions).
POSTGRESQL_LOG_BOUND = """ AND transaction_id < (
    SELECT least(
        (pg_current_xact_id_if_assigned()::text)::bigint,
        coalesce(
            min((running::text)::bigint),
            (pg_snapshot_xmax(pg_current_snapshot())::text)::bigint
        )
    )
    FROM pg_snapshot_xip(pg_current_snapshot()) AS running
    WHERE (running::text)::bigint %% 4294967296 NOT IN (
        SELECT (backend_xid::text)::bigint FROM pg_stat_activity
        WHERE backend_xid IS NOT NULL AND datname <> current_database()
    )
)"""


class JsonbReader(JsonbBinaryLoader):
    """Binary JSONB, parsed by `jsontext.loads` (msgspec: exact, and fast)."""

    _loads = staticmethod(loads)


class Announcer:
    """Sends the NOTIFY that wakes log followers, from a thread of its own on a connection of
    its own, for one database of one process.

    `wake()` returns at once. Appends that commit while a NOTIFY is on its way share the next
    one: followers read everything new when woken, so one wake-up serves them all. The thread
    and its connection end after `IDLE_SECONDS` without an append (no idle session is left to
    hold a database open) and start again at the next one. A process that ends waits up to
    `FLUSH_SECONDS` for the NOTIFY of its last appends (`flush`, at exit).
    """

    IDLE_SECONDS = 1.0
    RETRY_SECONDS = 1.0
    FLUSH_SECONDS = 2.0

    def __init__(self, params: dict) -> None:
        self.params = params
        self.pending = threading.Event()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.asked = 0  # wake() calls so far
        self.answered = 0  # those a NOTIFY went out for (or failed to)

    def wake(self) -> None:
        with self.lock:
            self.asked += 1
            self.pending.set()
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self._run, name="eventsourcing-notify", daemon=True
                )
                self.thread.start()

    def _run(self) -> None:
        conn = None
        try:
            while True:
                if not self.pending.wait(self.IDLE_SECONDS):
                    with self.lock:  # a wake() after the wait timed out finds this thread gone
                        if not self.pending.is_set():
                            self.thread = None
                            return
                with self.lock:
                    self.pending.clear()
                    asked = self.asked
                try:
                    if conn is None:
                        conn = psycopg.connect(**self.params, autocommit=True)
                    conn.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
                except psycopg.Error as exc:
                    logger.warning("cannot NOTIFY followers, they will poll: %s", exc)
                    if conn is not None:
                        conn.close()
                        conn = None
                    time.sleep(self.RETRY_SECONDS)
                self.answered = asked  # sent, or lost to an error: followers poll then
        finally:
            if conn is not None:
                conn.close()
            with self.lock:  # ended by an error of another kind: the next wake() starts anew
                if self.thread is threading.current_thread():
                    self.thread = None

    def flush(self, timeout: float) -> bool:
        """Wait until every wake() so far has had its NOTIFY; False if `timeout` ran out."""
        deadline = time.monotonic() + timeout
        while self.answered < self.asked and self.thread is not None:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True


_announcers: dict[tuple, Announcer] = {}
_announcers_lock = threading.Lock()


def announcer(using: str) -> Announcer:
    """The process's announcer for the database that the Django alias `using` names now (a
    test run renames it)."""
    settings = connections[using].settings_dict
    key = (using, *(str(settings.get(name)) for name in ("NAME", "HOST", "PORT", "USER")))
    found = _announcers.get(key)
    if found is None:
        with _announcers_lock:
            found = _announcers.get(key)
            if found is None:
                params = {**connection_params(using), "application_name": ANNOUNCER_NAME}
                found = _announcers[key] = Announcer(params)
    return found


def connection_params(using: str) -> dict:
    """psycopg.connect() arguments for a connection of our own to the alias's database."""
    params = connections[using].get_connection_params()
    for key in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(key, None)
    return params


def _forget_announcers() -> None:
    # A forked child has none of its parent's threads: it starts its own announcers. The
    # parent's connections are left alone (closing one would end the parent's session).
    global _announcers_lock
    _announcers.clear()
    _announcers_lock = threading.Lock()


def _flush_announcers() -> None:
    for found in list(_announcers.values()):
        found.flush(Announcer.FLUSH_SECONDS)


os.register_at_fork(after_in_child=_forget_announcers)
atexit.register(_flush_announcers)


class PostgreSQLRecorder(DjangoRecorder):
    """Record events in PostgreSQL, with a log bound that never lets a reader skip an event."""

    log_bound = POSTGRESQL_LOG_BOUND
    driver_decodes_json = True  # binary results: psycopg decodes JSONB itself

    def lock_stream(self, aggregate_id: uuid.UUID) -> None:
        key = (aggregate_id.int >> 64) - (1 << 63)  # a signed 64-bit advisory lock key
        self._fetch("SELECT pg_advisory_xact_lock(%s)", [key])

    def insert(self, records: Sequence[EventRecord]) -> list[StoredEvent]:
        stored = super().insert(records)
        transaction.on_commit(self._notify, using=self.using, robust=True)
        return stored

    def _notify(self) -> None:
        """Wake listening followers once the append has committed, from the process's
        announcer thread (`Announcer`): the append does not wait for the NOTIFY's round trip.

        Inside the append's transaction, the NOTIFY would hold PostgreSQL's notification lock
        through the commit's flush to disk, and concurrent appends would commit one at a time.
        If it is lost (the process ends just after the commit, the server is unreachable),
        followers still find the events on their next poll.
        """
        announcer(self.using).wake()

    def _insert_statement(self, records: Sequence[EventRecord]) -> tuple[str, list]:
        first = records[0]
        dumped: dict[int, str] = {}  # records of one append usually share one metadata dict

        def metadata(record: EventRecord) -> str:
            key = id(record.metadata)
            if key not in dumped:
                dumped[key] = dumps(record.metadata)
            return dumped[key]

        rows = ",".join(
            f'{{"event_type":{json_name(r.event_type)},"version":{r.version},'
            f'"schema_version":{r.schema_version},"event_data":{dumps(r.data)},'
            f'"metadata":{metadata(r)},"hash":"{r.hash}","previous_hash":"{r.previous_hash}"}}'
            for r in records
        )
        params = [
            first.aggregate_id,
            first.aggregate_type,
            first.created_at,
            first.aggregate_id,  # the predecessor, whose transaction id the new events may take
            first.version - 1,
            f"[{rows}]",
        ]
        return POSTGRESQL_INSERT.format(table=self.table), params

    def _read_log(self, after: Position, limit: int, holdback: bool, select) -> list:
        condition = "(transaction_id, id) > (%s, %s)"
        params = [after.transaction, after.id, limit]
        if not holdback:
            return select(condition, "transaction_id, id", params)
        return self._bounded(
            lambda: select(condition + POSTGRESQL_LOG_BOUND, "transaction_id, id", params)
        )

    def head(self) -> Position:
        return self._bounded(super().head)

    def _bounded(self, read: Callable[[], T]) -> T:
        """Run a read bounded by the running transactions, having taken first the list of the
        server's sessions that tells which of them run in other databases.

        PostgreSQL reads that list once per transaction. Taken before the read's snapshot,
        every transaction of another database that the snapshot shows running and that is
        older than an earlier reader's bound is in the list, so it never holds a later read
        back below that bound: heads and reads never go backwards. (Read within the same
        statement, a transaction of another database that ended in between counted as one of
        ours.) This relies on each statement taking its own snapshot (READ COMMITTED, Django's
        default); in a transaction that read the log before, the list is the one taken then,
        which can only hold that reader back.
        """
        if self.connection.in_atomic_block:
            self._fetch(TAKE_SESSIONS, [], prepare=True)
            return read()
        with transaction.atomic(using=self.using):
            self._fetch(TAKE_SESSIONS, [], prepare=True)
            return read()

    def _fetch(self, sql: str, params: list, *, prepare: bool = False) -> list[tuple]:
        connection = self.connection
        connection.ensure_connection()
        raw = connection.connection
        prepare = prepare and conf.get("PREPARE_STATEMENTS")
        if prepare and raw.prepare_threshold is None:
            # Django turns psycopg's preparing off; allow it, yet prepare only what asks for it.
            raw.prepare_threshold = NEVER_AUTOMATICALLY
        if raw.adapters.get_loader(JSONB_OID, Format.BINARY) is not JsonbReader:
            # Only binary JSONB, which Django's own (text) queries never use.
            raw.adapters.register_loader("jsonb", JsonbReader)
        with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
            # Binary results: timestamps, UUIDs and JSONB decode in C, not from text.
            cursor.execute(sql, params, prepare=prepare or None, binary=True)
            return cursor.fetchall()

    def _is_version_conflict(self, exc: IntegrityError) -> bool:
        diag = getattr(exc.__cause__, "diag", None)
        return diag is not None and diag.constraint_name == UNIQUE_CONSTRAINT

    @classmethod
    def log_waiter(cls, using: str, poll_interval: float) -> NotifyWaiter:
        return NotifyWaiter(using, poll_interval)


class NotifyWaiter:
    """Sleep until events are appended: woken by NOTIFY, or by the poll interval (when the
    LISTEN connection was lost; it is reopened on the next wait)."""

    def __init__(self, using: str, poll_interval: float) -> None:
        self.using = using
        self.poll_interval = poll_interval
        self._listener: psycopg.Connection | None = None

    def wait(self, stop: threading.Event, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (self.poll_interval if timeout is None else timeout)
        listener = self._listen()
        while not stop.is_set() and (remaining := deadline - time.monotonic()) > 0:
            step = min(remaining, 0.5)
            if listener is None:
                stop.wait(step)
                continue
            try:
                if any(True for _ in listener.notifies(timeout=step, stop_after=1)):
                    return
            except psycopg.Error as exc:
                logger.warning("lost the NOTIFY connection, will reconnect: %s", exc)
                self.close()
                listener = None

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _listen(self) -> psycopg.Connection | None:
        if self._listener is None:
            try:
                self._listener = psycopg.connect(**connection_params(self.using), autocommit=True)
                self._listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
            except psycopg.Error as exc:
                logger.warning("cannot LISTEN for new events, polling instead: %s", exc)
                self._listener = None
        return self._listener
