"""The shared base of the Django recorders: the `events` table through Django's connection.

Appends and reads are hand-written SQL on Django's connection and inside Django's transactions,
because the ORM's per-row work costs most of the throughput on this hot path. What differs per
database (the INSERT, the log's read bound, locks, statement preparation, the wake-up of log
followers) lives in one subclass per database: `postgresql.py`, `sqlite.py`. Database errors are
translated here, once. A recorder stores and reads; it fires no application hook.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Collection, Sequence

from django.db import IntegrityError, connections, transaction

from eventsourcing_app import conf
from eventsourcing_app.core.errors import ConcurrencyError, MissingPredecessor
from eventsourcing_app.core.jsontext import loads
from eventsourcing_app.core.records import (
    START,
    EventHash,
    EventRecord,
    Position,
    ReplayEvent,
    StoredEvent,
    StreamHead,
    stored_event,
)
from eventsourcing_app.models import Event

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


class DjangoRecorder:
    """Record events in the `events` table of one Django database; subclassed per database."""

    # The condition (after WHERE ...) that keeps a log reader behind writers still in flight.
    log_bound = ""
    # Whether the driver hands JSON columns over decoded (then a JSON string is a str, not text
    # to decode again); SQLite returns the text.
    driver_decodes_json = False
    columns = COLUMNS  # what `_select` reads, in `_event`'s order

    def __init__(self, using: str = "default") -> None:
        self.using = using
        self.table = Event._meta.db_table
        self.native_uuid = self.connection.features.has_native_uuid_field

    @property
    def connection(self):
        return connections[self.using]

    def transaction(self):
        return transaction.atomic(using=self.using)

    def lock_stream(self, aggregate_id: uuid.UUID) -> None:
        raise NotImplementedError

    def stream_head(self, aggregate_id: uuid.UUID) -> StreamHead | None:
        rows = self._fetch(
            f"SELECT aggregate_type, version, hash FROM {self.table} "
            "WHERE aggregate_id = %s ORDER BY version DESC LIMIT 1",
            [self._uuid_param(aggregate_id)],
        )
        return StreamHead(*rows[0]) if rows else None

    def insert(self, records: Sequence[EventRecord]) -> list[StoredEvent]:
        """Insert one stream's records inside the caller's transaction.

        Raise `ConcurrencyError` when a version is taken and `MissingPredecessor` when the
        event the first record chains onto is not stored.
        """
        if not self.connection.in_atomic_block:
            raise RuntimeError(
                f"{type(self).__name__}.insert() must run inside the append transaction"
            )
        stored: list[StoredEvent] = []
        chunk_size = conf.get("INSERT_BATCH_SIZE")
        for start in range(0, len(records), chunk_size):
            stored.extend(self._insert_chunk(records[start : start + chunk_size]))
        return stored

    def _insert_chunk(self, records: Sequence[EventRecord]) -> list[StoredEvent]:
        first = records[0]
        sql, params = self._insert_statement(records)
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

    def _insert_statement(self, records: Sequence[EventRecord]) -> tuple[str, list]:
        """Return the INSERT of one chunk and its parameters, before the predecessor check's."""
        raise NotImplementedError

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

    def replay_stream(
        self, aggregate_id: uuid.UUID, *, after_version: int, to_version: int | None, limit: int
    ) -> list[ReplayEvent]:
        stream = self._uuid_param(aggregate_id)
        params: list = [stream, after_version]
        upto = ""
        if to_version is not None:
            upto = " AND version <= %s"
            params.append(to_version)
        params.append(limit)
        sql = (
            "SELECT aggregate_type, event_type, version, schema_version, event_data, hash "
            f"FROM {self.table} WHERE aggregate_id = %s AND version > %s{upto} "
            "ORDER BY version LIMIT %s"
        )
        aggregate_id = _as_uuid(aggregate_id)
        rows = self._fetch(sql, params, prepare=True)
        if self.driver_decodes_json:
            return [ReplayEvent(aggregate_id, *row) for row in rows]
        return [
            ReplayEvent(aggregate_id, kind, event_type, version, schema, _loads(data), digest)
            for kind, event_type, version, schema, data, digest in rows
        ]

    def version_at(self, aggregate_id: uuid.UUID, as_of: dt.datetime) -> int | None:
        rows = self._fetch(
            f"SELECT max(version) FROM {self.table} WHERE aggregate_id = %s AND created_at <= %s",
            [self._uuid_param(aggregate_id), self.connection.ops.adapt_datetimefield_value(as_of)],
            prepare=True,
        )
        return rows[0][0]

    def read_log(
        self,
        after: Position,
        limit: int,
        *,
        holdback: bool = True,
        event_types: Collection[str] | None = None,
    ) -> list[StoredEvent]:
        if event_types is None:
            return self._read_log(after, limit, holdback, self._select)
        if not event_types:
            return []
        types = sorted(event_types)
        of_types = f" AND event_type IN ({', '.join(['%s'] * len(types))})"

        def select(where: str, order_by: str, params: list) -> list[StoredEvent]:
            # The limit is the last parameter; the types' go before it.
            return self._select(where + of_types, order_by, [*params[:-1], *types, params[-1]])

        return self._read_log(after, limit, holdback, select)

    def read_log_hashes(self, after: Position, limit: int) -> list[EventHash]:
        """Read the log as `read_log` does, but only what the ledger seals of each event."""
        return self._read_log(after, limit, True, self._select_hashes)

    def _read_log(self, after: Position, limit: int, holdback: bool, select) -> list:
        """Read the log after `after` with `select(where, order_by, params)`, in log order."""
        raise NotImplementedError

    def head(self) -> Position:
        rows = self._fetch(
            f"SELECT transaction_id, id FROM {self.table} WHERE 1 = 1{self.log_bound} "
            "ORDER BY transaction_id DESC, id DESC LIMIT 1",
            [],
        )
        return Position(int(rows[0][0]), rows[0][1]) if rows else START

    def count_between(self, after: Position, upto: Position, cap: int) -> int:
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
        sql = f"SELECT {self.columns} FROM {self.table} WHERE {where} ORDER BY {order_by} LIMIT %s"
        streams: dict = {}  # a page's stream ids, each made a UUID once
        return [self._event(row, streams) for row in self._fetch(sql, params, prepare=True)]

    def _select_hashes(self, where: str, order_by: str, params: list) -> list[EventHash]:
        sql = (
            f"SELECT id, transaction_id, aggregate_id, version, hash FROM {self.table} "
            f"WHERE {where} ORDER BY {order_by} LIMIT %s"
        )
        return [
            EventHash(row[0], int(row[1]), _as_uuid(row[2]), row[3], row[4])
            for row in self._fetch(sql, params, prepare=True)
        ]

    def _fetch(self, sql: str, params: list, *, prepare: bool = False) -> list[tuple]:
        """Run one statement and return its rows, with errors translated to Django's."""
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def _event(self, row, streams: dict) -> StoredEvent:
        """The row as a `StoredEvent`; `streams` holds the page's stream ids made UUIDs."""
        created_at = row[9]
        aggregate_id = streams.get(row[2])
        if aggregate_id is None:
            aggregate_id = streams[row[2]] = _as_uuid(row[2])
        if isinstance(created_at, str):
            created_at = dt.datetime.fromisoformat(created_at)
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=dt.UTC)
        return stored_event(
            aggregate_id,
            row[3],
            row[4],
            row[5],
            row[6],
            row[7] if self.driver_decodes_json else _loads(row[7]),
            row[8] if self.driver_decodes_json else _loads(row[8]),
            created_at,
            row[10],
            row[11],
            row[0],
            int(row[1]),
        )

    def _uuid_param(self, value: uuid.UUID):
        return value if self.native_uuid else value.hex

    def _is_version_conflict(self, exc: IntegrityError) -> bool:
        raise NotImplementedError

    @classmethod
    def log_waiter(cls, using: str, poll_interval: float) -> PollWaiter:
        """Return what log followers of this database sleep on until events are appended."""
        return PollWaiter(poll_interval)


class PollWaiter:
    """Sleep for the poll interval (or until stopped): for databases that cannot notify."""

    def __init__(self, poll_interval: float) -> None:
        self.poll_interval = poll_interval

    def wait(self, stop: threading.Event, timeout: float | None = None) -> None:
        stop.wait(self.poll_interval if timeout is None else timeout)

    def close(self) -> None:
        """Nothing to close."""


def _as_uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


# One encoder for every call: json.dumps() with options builds a new encoder each time.
dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _loads(value):
    return loads(value) if isinstance(value, (str, bytes)) else value
