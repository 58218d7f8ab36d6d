"""Build the event store and repositories the project uses, with the app's settings."""

from __future__ import annotations

from typing import TypeVar

from eventsourcing_app import conf
from eventsourcing_app.backends.base import DjangoRecorder
from eventsourcing_app.backends.snapshots import DjangoSnapshotStore
from eventsourcing_app.core.heads import StreamHeads
from eventsourcing_app.core.repository import Repository
from eventsourcing_app.core.store import EventStore
from eventsourcing_app.domain.aggregate import Aggregate

A = TypeVar("A", bound=Aggregate)

# One memory of stream heads per database, shared by every store of the process.
_heads: dict[str, StreamHeads] = {}


def get_event_store(using: str = "default") -> EventStore:
    """Return an `EventStore` on the Django database `using`."""
    heads = _heads.get(using)
    if heads is None:
        heads = _heads.setdefault(using, StreamHeads(conf.get("STREAM_HEAD_CACHE_SIZE")))
    return EventStore(
        DjangoRecorder(using),
        read_batch_size=conf.get("READ_BATCH_SIZE"),
        any_version_retries=conf.get("ANY_VERSION_RETRIES"),
        heads=heads,
    )


def snapshot_interval(aggregate_class: type[Aggregate]) -> int:
    """Return how many events apart `aggregate_class` is snapshotted (0: never)."""
    per_type = conf.get("SNAPSHOT_INTERVALS")
    if aggregate_class.type_name in per_type:
        return per_type[aggregate_class.type_name]
    if aggregate_class.snapshot_interval is not None:
        return aggregate_class.snapshot_interval
    return conf.get("SNAPSHOT_INTERVAL")


def get_repository(aggregate_class: type[A], using: str = "default") -> Repository[A]:
    """Return a `Repository` for `aggregate_class` on the Django database `using`."""
    return Repository(
        aggregate_class,
        get_event_store(using),
        snapshots=DjangoSnapshotStore(using),
        snapshot_interval=snapshot_interval(aggregate_class),
    )
