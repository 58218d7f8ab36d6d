"""Snapshots in the `snapshots` table: one indexed query per load, a statement prepared once."""

from __future__ import annotations

import uuid

from django.db import connections

from eventsourcing_app.backends.statements import fetch, instance
from eventsourcing_app.core.records import SnapshotRecord
from eventsourcing_app.models import Snapshot

_COLUMNS = ("aggregate_id", "aggregate_type", "version", "state", "schema_version", "created_at")
_FIELDS = [Snapshot._meta.get_field(name) for name in _COLUMNS]
_ID = _FIELDS[0]
_STATEMENTS: dict[tuple[str, bool, bool], str] = {}


def _latest(connection, bounded: bool, of_schema: bool) -> str:
    """The latest snapshot of a stream, at or below a version, of a schema version: its
    statement, made once per kind of database."""
    key = (connection.vendor, bounded, of_schema)
    if key not in _STATEMENTS:
        _STATEMENTS[key] = _statement(connection.ops.quote_name, bounded, of_schema)
    return _STATEMENTS[key]


def _statement(quote, bounded: bool, of_schema: bool) -> str:
    column = {field.name: quote(field.column) for field in _FIELDS}
    where = [f"{column['aggregate_id']} = %s"]
    if bounded:
        where.append(f"{column['version']} <= %s")
    if of_schema:
        where.append(f"{column['schema_version']} = %s")
    return (
        f"SELECT {', '.join(column.values())} FROM {quote(Snapshot._meta.db_table)} "
        f"WHERE {' AND '.join(where)} ORDER BY {column['version']} DESC LIMIT 1"
    )


class DjangoSnapshotStore:
    """Keep snapshots in one Django database."""

    def __init__(self, using: str = "default") -> None:
        self.using = using

    def latest(
        self,
        aggregate_id: uuid.UUID,
        at_or_below: int | None,
        schema_version: int | None = None,
    ) -> SnapshotRecord | None:
        connection = connections[self.using]
        params = [_ID.get_db_prep_value(aggregate_id, connection)]
        if at_or_below is not None:
            params.append(at_or_below)
        if schema_version is not None:
            params.append(schema_version)
        sql = _latest(connection, at_or_below is not None, schema_version is not None)
        rows = fetch(self.using, sql, params)  # a statement once prepared: every load asks it
        if not rows:
            return None
        row = instance(Snapshot, _FIELDS, rows[0], self.using)
        return SnapshotRecord(
            aggregate_id=row.aggregate_id,
            aggregate_type=row.aggregate_type,
            version=row.version,
            state=row.state,
            schema_version=row.schema_version,
            created_at=row.created_at,
        )

    def save(self, snapshot: SnapshotRecord) -> None:
        Snapshot.objects.using(self.using).bulk_create(
            [
                Snapshot(
                    aggregate_id=snapshot.aggregate_id,
                    aggregate_type=snapshot.aggregate_type,
                    version=snapshot.version,
                    state=snapshot.state,
                    schema_version=snapshot.schema_version,
                )
            ],
            ignore_conflicts=True,
        )

    def purge(self, aggregate_type: str | None = None) -> int:
        snapshots = Snapshot.objects.using(self.using).all()
        if aggregate_type is not None:
            snapshots = snapshots.filter(aggregate_type=aggregate_type)
        deleted, _ = snapshots.delete()
        return deleted
