"""The Django recorder: the one place where the event store meets the database.

Appends and reads are hand-written SQL on Django's connection and inside Django's transactions,
because the ORM's per-row work costs most of the throughput on this hot path. On PostgreSQL the
statements go straight to psycopg with server-side binding, so the server prepares them once per
connection, and an append of any size is one `INSERT ... SELECT FROM json_to_recordset(...)`.
Database
errors are translated here, once.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence

import psycopg
from django.db import IntegrityError, connections, transaction

from eventsourcing_app import conf
from eventsourcing_app.core.errors import ConcurrencyError, MissingPredecessor
from eventsourcing_app.core.hashchain import json_name
from eventsourcing_app.core.records import START, EventRecord, Position, StoredEvent, StreamHead
from eventsourcing_app.models import Event
from eventsourcing_app.signals import events_appended

NEVER_AUTOMATICALLY = 2**31 - 1
NOTIFY_CHANNEL = "eventsourcing_events"  # workers LISTEN on it
UNIQUE_CONSTRAINT = "events_aggregate_version_uniq"
COLUMNS = (
    "id, transaction_id, aggregate_id, aggregate_type, event_type, version, schema_version, "
    "event_data, metadata, created_at, hash, previous_hash"
)
INSERT_INTO = (
    "INSERT INTO {table} (aggregate_id, aggregate_type, event_type, version, schema_version, "
    "event_data, metadata, created_at, hash, previous_hash) "
)
# The new events land only if the event they chain onto is stored: a stream can never get a gap,
# even when the caller's idea of the stream's head was wrong.
PREDECESSOR_CHECK = (
    "WHERE {genesis} OR EXISTS (SELECT 1 FROM {table} WHERE aggregate_id = {param_uuid} "
    "AND version = {param_int} AND hash = {param})"
)
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
    "FROM json_to_recordset(%s::json) AS e(event_type varchar, version int, "
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


class DjangoRecorder:
    """Record events in the `events` table of one Django database (PostgreSQL or SQLite)."""

    def __init__(self, using: str = "default") -> None:
        self.using = using
        self.table = Event._meta.db_table
        self.is_postgresql = self.connection.vendor == "postgresql"
        self.native_uuid = self.connection.features.has_native_uuid_field

    @property
    def connection(self):
        return connections[self.using]

    def transaction(self):
        return transaction.atomic(using=self.using)

    def lock_stream(self, aggregate_id: uuid.UUID) -> None:
        if not self.is_postgresql:
            return  # SQLite transactions begin IMMEDIATE: they hold the database's write lock
        key = (aggregate_id.int >> 64) - (1 << 63)  # a signed 64-bit advisory lock key
        self._fetch("SELECT pg_advisory_xact_lock(%s)", [key])

    def stream_head(self, aggregate_id: uuid.UUID) -> StreamHead | None:
        rows = self._fetch(
            f"SELECT aggregate_type, version, hash FROM {self.table} "
            "WHERE aggregate_id = %s ORDER BY version DESC LIMIT 1",
            [self._uuid_param(aggregate_id)],
        )
        return StreamHead(*rows[0]) if rows else None

    def insert(self, records: Sequence[EventRecord]) -> list[StoredEvent]:
        """Insert one stream's records inside the caller's transaction, then announce them.

        Raise `ConcurrencyError` when a version is taken and `MissingPredecessor` when the
        event the first record chains onto is not stored.
        """
        if not self.connection.in_atomic_block:
            raise RuntimeError("DjangoRecorder.insert() must run inside the append transaction")
        stored: list[StoredEvent] = []
        chunk_size = conf.get("INSERT_BATCH_SIZE")
        for start in range(0, len(records), chunk_size):
            stored.extend(self._insert_chunk(records[start : start + chunk_size]))
        if self.is_postgresql:
            transaction.on_commit(self._notify, using=self.using, robust=True)
        events_appended.send(sender=type(self), events=stored, using=self.using)
        return stored

    def _notify(self) -> None:
        """Wake listening workers, in a transaction of its own once the append has committed.

        Inside the append's transaction, the NOTIFY would hold PostgreSQL's notification lock
        through the commit's flush to disk, and concurrent appends would commit one at a time.
        If this is lost (the connection dropped just after the commit), workers still find the
        events on their next poll.
        """
        self._fetch("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])

    def _insert_chunk(self, records: Sequence[EventRecord]) -> list[StoredEvent]:
        first = records[0]
        sql, params = (
            self._postgresql_insert(records) if self.is_postgresql else self._sqlite_insert(records)
        )
        predecessor = [
            first.version == 1,
            self._uuid_param(first.aggregate_id),
            first.version - 1,
            first.previous_hash,
        ]
        try:
            rows = self._fetch(sql, params + predecessor, prepare=True)
        except IntegrityError as exc:
            if not self._is_version_conflict(exc):
                raise
            raise ConcurrencyError(first.aggregate_id, first.version - 1, None) from exc
        if not rows:
            raise MissingPredecessor(first.aggregate_id, first.version - 1)
        returned = {version: (id_, tx) for version, id_, tx in rows}
        return [
            StoredEvent.from_record(
                record,
                id=returned[record.version][0],
                transaction_id=int(returned[record.version][1]),
            )
            for record in records
        ]

    def _postgresql_insert(self, records: Sequence[EventRecord]) -> tuple[str, list]:
        first = records[0]
        dumped: dict[int, str] = {}  # records of one append usually share one metadata dict

        def metadata(record: EventRecord) -> str:
            key = id(record.metadata)
            if key not in dumped:
                dumped[key] = _dumps(record.metadata)
            return dumped[key]

        rows = ",".join(
            f'{{"event_type":{json_name(r.event_type)},"version":{r.version},'
            f'"schema_version":{r.schema_version},"event_data":{_dumps(r.data)},'
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

    def _sqlite_insert(self, records: Sequence[EventRecord]) -> tuple[str, list]:
        first = records[0]
        aggregate_id = self._uuid_param(first.aggregate_id)
        created_at = self.connection.ops.adapt_datetimefield_value(first.created_at)
        row = "(" + ", ".join(["%s"] * 10) + ")"
        sql = (
            INSERT_INTO.format(table=self.table)
            + "SELECT * FROM (VALUES "
            + ", ".join([row] * len(records))
            + ") "
            + PREDECESSOR_CHECK.format(
                genesis="%s", table=self.table, param_uuid="%s", param_int="%s", param="%s"
            )
            + " RETURNING version, id, transaction_id"
        )
        params: list = []
        dumped: dict[int, str] = {}  # records of one append usually share one metadata dict
        for record in records:
            key = id(record.metadata)
            if key not in dumped:
                dumped[key] = _dumps(record.metadata)
            params += (
                aggregate_id,
                record.aggregate_type,
                record.event_type,
                record.version,
                record.schema_version,
                _dumps(record.data),
                dumped[key],
                created_at,
                record.hash,
                record.previous_hash,
            )
        return sql, params

    def read_stream(
        self,
        aggregate_id: uuid.UUID,
        *,
        after_version: int,
        to_version: int | None,
        as_of: dt.datetime | None,
        limit: int,
    ) -> list[StoredEvent]:
        conditions = ["aggregate_id = %s", "version > %s"]
        params: list = [self._uuid_param(aggregate_id), after_version]
        if to_version is not None:
            conditions.append("version <= %s")
            params.append(to_version)
        if as_of is not None:
            conditions.append("created_at <= %s")
            params.append(self.connection.ops.adapt_datetimefield_value(as_of))
        params.append(limit)
        return self._select(" AND ".join(conditions), "version", params)

    def version_at(self, aggregate_id: uuid.UUID, as_of: dt.datetime) -> int | None:
        rows = self._fetch(
            f"SELECT max(version) FROM {self.table} WHERE aggregate_id = %s AND created_at <= %s",
            [self._uuid_param(aggregate_id), self.connection.ops.adapt_datetimefield_value(as_of)],
            prepare=True,
        )
        return rows[0][0]

    def read_log(self, after: Position, limit: int, *, holdback: bool = True) -> list[StoredEvent]:
        if not self.is_postgresql:
            return self._sqlite_read_log(after, limit)
        condition = "(transaction_id, id) > (%s, %s)"
        if holdback:
            condition += POSTGRESQL_LOG_BOUND
        return self._select(condition, "transaction_id, id", [after.transaction, after.id, limit])

    def _sqlite_read_log(self, after: Position, limit: int) -> list[StoredEvent]:
        """SQLite seeks a row-value comparison on its first column only, so a read far into the
        log would scan the index from the start. Read the rest of `after`'s transaction (on
        SQLite every row has transaction 0), then any later transactions, each by a seek."""
        rows = self._select(
            "transaction_id = %s AND id > %s", "id", [after.transaction, after.id, limit]
        )
        if len(rows) < limit:
            rows += self._select(
                "transaction_id > %s", "transaction_id, id", [after.transaction, limit - len(rows)]
            )
        return rows

    def head(self) -> Position:
        bound = "WHERE 1 = 1" + (POSTGRESQL_LOG_BOUND if self.is_postgresql else "")
        rows = self._fetch(
            f"SELECT transaction_id, id FROM {self.table} {bound} "
            "ORDER BY transaction_id DESC, id DESC LIMIT 1",
            [],
        )
        return Position(int(rows[0][0]), rows[0][1]) if rows else START

    def count_between(self, after: Position, upto: Position, cap: int) -> int:
        if not self.is_postgresql and after.transaction == upto.transaction:
            rows = self._fetch(  # one transaction (all of SQLite's log): a seek, as in read_log
                f"SELECT count(*) FROM (SELECT 1 FROM {self.table} "
                "WHERE transaction_id = %s AND id > %s AND id <= %s LIMIT %s) AS behind",
                [after.transaction, after.id, upto.id, cap],
            )
            return rows[0][0]
        rows = self._fetch(
            f"SELECT count(*) FROM (SELECT 1 FROM {self.table} "
            "WHERE (transaction_id, id) > (%s, %s) AND (transaction_id, id) <= (%s, %s) "
            "LIMIT %s) AS behind",
            [after.transaction, after.id, upto.transaction, upto.id, cap],
        )
        return rows[0][0]

    def read_chains(
        self, after: tuple[uuid.UUID, int] | None, limit: int, aggregate_id: uuid.UUID | None
    ) -> list[StoredEvent]:
        conditions, params = ["1 = 1"], []
        if after is not None:
            conditions.append("(aggregate_id, version) > (%s, %s)")
            params += [self._uuid_param(after[0]), after[1]]
        if aggregate_id is not None:
            conditions.append("aggregate_id = %s")
            params.append(self._uuid_param(aggregate_id))
        params.append(limit)
        return self._select(" AND ".join(conditions), "aggregate_id, version", params)

    def streams(
        self, aggregate_type: str, after: uuid.UUID | None, limit: int
    ) -> list[tuple[uuid.UUID, int]]:
        condition, params = "aggregate_type = %s", [aggregate_type]
        if after is not None:
            condition += " AND aggregate_id > %s"
            params.append(self._uuid_param(after))
        rows = self._fetch(
            f"SELECT aggregate_id, max(version) FROM {self.table} WHERE {condition} "
            "GROUP BY aggregate_id ORDER BY aggregate_id LIMIT %s",
            [*params, limit],
        )
        return [(_as_uuid(aggregate_id), version) for aggregate_id, version in rows]

    def count(self, aggregate_id: uuid.UUID | None = None) -> int:
        sql, params = f"SELECT COUNT(*) FROM {self.table}", []
        if aggregate_id is not None:
            sql += " WHERE aggregate_id = %s"
            params.append(self._uuid_param(aggregate_id))
        return self._fetch(sql, params)[0][0]

    def _select(self, where: str, order_by: str, params: list) -> list[StoredEvent]:
        sql = f"SELECT {COLUMNS} FROM {self.table} WHERE {where} ORDER BY {order_by} LIMIT %s"
        return [self._event(row) for row in self._fetch(sql, params, prepare=True)]

    def _fetch(self, sql: str, params: list, *, prepare: bool = False) -> list[tuple]:
        """Run one statement and return its rows, with errors translated to Django's."""
        connection = self.connection
        if not self.is_postgresql:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        connection.ensure_connection()
        raw = connection.connection
        prepare = prepare and conf.get("PREPARE_STATEMENTS")
        if prepare and raw.prepare_threshold is None:
            # Django turns psycopg's preparing off; allow it, yet prepare only what asks for it.
            raw.prepare_threshold = NEVER_AUTOMATICALLY
        with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
            # Binary results: timestamps, UUIDs and JSONB decode in C, not from text.
            cursor.execute(sql, params, prepare=prepare or None, binary=True)
            return cursor.fetchall()

    def _event(self, row) -> StoredEvent:
        aggregate_id, created_at = _as_uuid(row[2]), row[9]
        if isinstance(created_at, str):
            created_at = dt.datetime.fromisoformat(created_at)
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=dt.UTC)
        return StoredEvent(
            id=row[0],
            transaction_id=int(row[1]),
            aggregate_id=aggregate_id,
            aggregate_type=row[3],
            event_type=row[4],
            version=row[5],
            schema_version=row[6],
            data=_loads(row[7]),
            metadata=_loads(row[8]),
            created_at=created_at,
            hash=row[10],
            previous_hash=row[11],
        )

    def _uuid_param(self, value: uuid.UUID):
        return value if self.native_uuid else value.hex

    def _is_version_conflict(self, exc: IntegrityError) -> bool:
        cause = exc.__cause__
        diag = getattr(cause, "diag", None)
        if diag is not None:
            return diag.constraint_name == UNIQUE_CONSTRAINT
        message = str(cause or exc)
        return "UNIQUE constraint failed" in message and f"{self.table}.version" in message


def _as_uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


# One encoder for every call: json.dumps() with options builds a new encoder each time.
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _loads(value):
    return json.loads(value) if isinstance(value, (str, bytes)) else value
