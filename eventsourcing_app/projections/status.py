"""Read-side questions about the event store: how far each projection has got, and who moved it."""

from __future__ import annotations

from dataclasses import dataclass

from eventsourcing_app.core.records import START, Position
from eventsourcing_app.core.store import EventStore
from eventsourcing_app.models import CheckpointChange, ProjectionCheckpoint
from eventsourcing_app.projections import registry

LAG_COUNT_CAP = 1_000_000
SHOWN_CHANGES = 20


@dataclass(frozen=True)
class ProjectionStatus:
    """A projection's place in the log: what its read model reflects and how far behind it is."""

    name: str
    inline: bool
    status: str
    position: Position
    head: Position
    events_behind: int
    behind_capped: bool
    last_error: str
    failed_event_id: int | None
    owner: str

    @property
    def up_to_date(self) -> bool:
        return self.events_behind == 0


def projection_statuses(store: EventStore, using: str = "default") -> list[ProjectionStatus]:
    """Return every registered projection's position, the log head and the lag between them.

    Inline projections commit with the events, so they always reflect the head. The lag of an
    async one is counted up to a million events (`behind_capped` says when there are more).

    The checkpoints are read before the head. Read the other way round, a worker that takes a
    step between the two reads (a saga's, which appends as it moves its checkpoint) would be
    shown at the head with its own new events not yet handled: "up to date" while it is not.
    """
    # Checkpoints named "digests:..." count ledger digests, not events: no lag to show.
    checkpoints = {
        cp.name: cp
        for cp in ProjectionCheckpoint.objects.using(using).exclude(name__startswith="digests:")
    }
    head = store.head()
    names = registry.names() + sorted(set(checkpoints) - set(registry.names()))
    return [_status(name, checkpoints.get(name), head, store) for name in names]


def projection_status(name: str, store: EventStore, using: str = "default") -> ProjectionStatus:
    """Return one projection's status (cheaper than all of them, for a response header)."""
    checkpoint = ProjectionCheckpoint.objects.using(using).filter(name=name).first()
    return _status(name, checkpoint, store.head(), store)  # the head after: see above


def checkpoint_changes(
    limit: int = SHOWN_CHANGES, using: str = "default"
) -> list[CheckpointChange]:
    """Return the latest operator changes to checkpoints (rebuilds), newest first."""
    return list(CheckpointChange.objects.using(using).order_by("-changed_at", "-id")[:limit])


def _status(name, checkpoint, head: Position, store: EventStore) -> ProjectionStatus:
    inline = name in registry.names() and registry.get(name).inline  # else async, or a publisher
    if inline:
        position, behind, status = head, 0, "inline"
    else:
        position = checkpoint.position if checkpoint else START
        behind = store.count_between(position, head, LAG_COUNT_CAP + 1) if head > position else 0
        status = checkpoint.status if checkpoint else "not started"
    return ProjectionStatus(
        name=name,
        inline=inline,
        status=status,
        position=position,
        head=head,
        events_behind=min(behind, LAG_COUNT_CAP),
        behind_capped=behind > LAG_COUNT_CAP,
        last_error=checkpoint.last_error if checkpoint else "",
        failed_event_id=checkpoint.failed_event_id if checkpoint else None,
        owner=checkpoint.owner if checkpoint else "",
    )
