"""Checkpoints of async projections: position, ownership by lease, failures and operator moves."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q
from django.utils import timezone

from eventsourcing_app.core.records import Position, StoredEvent
from eventsourcing_app.models import CheckpointChange, ProjectionCheckpoint


def ensure(names: list[str], using: str) -> None:
    """Create the checkpoint rows that do not exist yet, at the start of the log."""
    ProjectionCheckpoint.objects.using(using).bulk_create(
        [ProjectionCheckpoint(name=name) for name in names], ignore_conflicts=True
    )


def claim(name: str, owner: str, lease: dt.timedelta, using: str) -> ProjectionCheckpoint | None:
    """Take or keep ownership of a projection; return its checkpoint, or None if another
    worker's lease on it is still fresh."""
    now = timezone.now()
    free = (
        Q(owner="")
        | Q(owner=owner)
        | Q(heartbeat_at__isnull=True)
        | Q(heartbeat_at__lt=now - lease)
    )
    rows = ProjectionCheckpoint.objects.using(using).filter(free, name=name)
    if not rows.update(owner=owner, heartbeat_at=now):
        return None
    return ProjectionCheckpoint.objects.using(using).get(name=name)


def release(name: str, owner: str, using: str) -> None:
    """Give up ownership, so another worker can take over at once."""
    ProjectionCheckpoint.objects.using(using).filter(name=name, owner=owner).update(
        owner="", heartbeat_at=None
    )


def lock(name: str, using: str) -> ProjectionCheckpoint:
    """Return the checkpoint locked for the rest of the transaction."""
    return ProjectionCheckpoint.objects.using(using).select_for_update().get(name=name)


def position(name: str, using: str) -> Position:
    """Return where the checkpoint stands (read without a lock)."""
    row = (
        ProjectionCheckpoint.objects.using(using)
        .filter(name=name)
        .values_list("position_transaction", "position_id")
    )
    return Position(*row.get())


def advance(name: str, position: Position, using: str) -> None:
    """Move the checkpoint (inside the transaction that changed the read model)."""
    ProjectionCheckpoint.objects.using(using).filter(name=name).update(
        position_transaction=position.transaction,
        position_id=position.id,
        status=ProjectionCheckpoint.OK,
        last_error="",
        failed_event_id=None,
        failed_at=None,
        heartbeat_at=timezone.now(),
    )


def fail(name: str, event: StoredEvent | None, error: str, using: str) -> None:
    """Record that the projection stopped at `event`; its position stays before it."""
    ProjectionCheckpoint.objects.using(using).filter(name=name).update(
        status=ProjectionCheckpoint.FAILED,
        last_error=error,
        failed_event_id=event.id if event else None,
        failed_at=timezone.now(),
    )


def record_change(
    name: str, kind: str, before: Position, after: Position, *, by: str, reason: str, using: str
) -> CheckpointChange:
    """Record an operator's move of a checkpoint (workers' batch-by-batch advances are not)."""
    return CheckpointChange.objects.using(using).create(
        checkpoint=name,
        kind=kind,
        from_transaction=before.transaction,
        from_id=before.id,
        to_transaction=after.transaction,
        to_id=after.id,
        changed_by=by,
        reason=reason,
    )
