"""Snapshots in the `snapshots` table, through the ORM: one indexed query per load."""

from __future__ import annotations

import uuid

from eventsourcing_app.core.records import SnapshotRecord
from eventsourcing_app.models import Snapshot


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
        snapshots = Snapshot.objects.using(self.using).filter(aggregate_id=aggregate_id)
        if at_or_below is not None:
            snapshots = snapshots.filter(version__lte=at_or_below)
        if schema_version is not None:
            snapshots = snapshots.filter(schema_version=schema_version)
        row = snapshots.order_by("-version").first()
        if row is None:
            return None
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
