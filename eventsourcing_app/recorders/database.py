"""The Django recorder: the one place where the event store meets the database.

Appends and reads are hand-written SQL through Django's connection (one multi-row INSERT per
batch, keyset-paged reads), because the ORM's per-row work costs a third of the throughput on
this hot path. Database errors are translated here, once.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence

from django.db import IntegrityError, connections, transaction

from eventsourcing_app import conf
from eventsourcing_app.errors import ConcurrencyError
from eventsourcing_app.models import Event
from eventsourcing_app.records import EventRecord, Position, StoredEvent, StreamHead
from eventsourcing_app.signals import events_appended

UNIQUE_CONSTRAINT = "events_aggregate_version_uniq"
INSERT_COLUMNS = (
    "aggregate_id",
    "aggregate_type",
    "event_type",
    "version",
    "schema_version",
    "event_data",
    "metadata",
    "created_at",
    "hash",
    "previous_hash",
)
SELECT_COLUMNS = ("id", "transaction_id", *INSERT_COLUMNS)


class DjangoRecorder:
    """Record events in the `events` table of one Django database."""

    def __init__(self, using: str = "default") -> None:
        self.using = using
        self.table = Event._meta.db_table

    @property
    def connection(self):
        return connections[self.using]

    @property
    def is_postgresql(self) -> bool:
        return self.connection.vendor == "postgresql"

    def transaction(self):
        return transaction.atomic(using=self.using)

    def stream_head(self, aggregate_id: uuid.UUID) -> StreamHead | None:
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"SELECT aggregate_type, version, hash FROM {self.table} "
                "WHERE aggregate_id = %s ORDER BY version DESC LIMIT 1",
                [self._uuid_param(aggregate_id)],
            )
            row = cursor.fetchone()
        return StreamHead(row[0], row[1], row[2]) if row else None

    def insert(self, records: Sequence[EventRecord]) -> list[StoredEvent]:
        """Insert one stream's records inside the caller's transaction, then announce them."""
        if not self.connection.in_atomic_block:
            raise RuntimeError("DjangoRecorder.insert() must run inside the append transaction")
        stored: list[StoredEvent] = []
        chunk_size = conf.get("INSERT_BATCH_SIZE")
        for start in range(0, len(records), chunk_size):
            stored.extend(self._insert_chunk(records[start : start + chunk_size]))
        events_appended.send(sender=type(self), events=stored, using=self.using)
        return stored

    def _insert_chunk(self, records: Sequence[EventRecord]) -> list[StoredEvent]:
        row = "(" + ", ".join(["%s"] * len(INSERT_COLUMNS)) + ")"
        sql = (
            f"INSERT INTO {self.table} ({', '.join(INSERT_COLUMNS)}) VALUES "
            + ", ".join([row] * len(records))
            + " RETURNING version, id, transaction_id"
        )
        first = records[0]
        aggregate_id = self._uuid_param(first.aggregate_id)
        created_at = self.connection.ops.adapt_datetimefield_value(first.created_at)
        params: list = []
        for record in records:
            params += (
                aggregate_id,
                record.aggregate_type,
                record.event_type,
                record.version,
                record.schema_version,
                _dumps(record.data),
                _dumps(record.metadata),
                created_at,
                record.hash,
                record.previous_hash,
            )
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(sql, params)
                returned = {version: (id_, tx) for version, id_, tx in cursor.fetchall()}
        except IntegrityError as exc:
            if not self._is_version_conflict(exc):
                raise
            raise ConcurrencyError(first.aggregate_id, first.version - 1, None) from exc
        return [
            StoredEvent.from_record(
                record,
                id=returned[record.version][0],
                transaction_id=int(returned[record.version][1]),
            )
            for record in records
        ]

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

    def read_log(self, after: Position, limit: int) -> list[StoredEvent]:
        condition = "(transaction_id, id) > (%s, %s)"
        if self.is_postgresql:
            # Rows of transactions still open may carry smaller ids than rows already visible;
            # read only transactions older than every open one, so no row can appear behind us.
            condition += (
                " AND transaction_id < (pg_snapshot_xmin(pg_current_snapshot())::text)::bigint"
            )
        return self._select(condition, "transaction_id, id", [after.transaction, after.id, limit])

    def read_chains(
        self,
        after: tuple[uuid.UUID, int] | None,
        limit: int,
        aggregate_id: uuid.UUID | None,
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

    def count(self, aggregate_id: uuid.UUID | None = None) -> int:
        sql, params = f"SELECT COUNT(*) FROM {self.table}", []
        if aggregate_id is not None:
            sql += " WHERE aggregate_id = %s"
            params.append(self._uuid_param(aggregate_id))
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0]

    def _select(self, where: str, order_by: str, params: list) -> list[StoredEvent]:
        sql = (
            f"SELECT {', '.join(SELECT_COLUMNS)} FROM {self.table} "
            f"WHERE {where} ORDER BY {order_by} LIMIT %s"
        )
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [self._event(row) for row in cursor.fetchall()]

    def _event(self, row) -> StoredEvent:
        aggregate_id, created_at = row[2], row[9]
        if not isinstance(aggregate_id, uuid.UUID):
            aggregate_id = uuid.UUID(aggregate_id)
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
        return value if self.connection.features.has_native_uuid_field else value.hex

    def _is_version_conflict(self, exc: IntegrityError) -> bool:
        cause = exc.__cause__
        diag = getattr(cause, "diag", None)
        if diag is not None:
            return diag.constraint_name == UNIQUE_CONSTRAINT
        message = str(cause or exc)
        return "UNIQUE constraint failed" in message and f"{self.table}.version" in message


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _loads(value):
    return json.loads(value) if isinstance(value, (str, bytes)) else value
