"""Operator work on snapshots: purge them, or rebuild them by replaying streams."""

from __future__ import annotations

from collections.abc import Callable

from eventsourcing_app.core.protocols import SnapshotStore
from eventsourcing_app.core.repository import Repository
from eventsourcing_app.core.store import EventStore
from eventsourcing_app.domain.aggregate import Aggregate

STREAM_BATCH = 500


def count_streams(store: EventStore, aggregate_type: str) -> int:
    """Return how many streams of `aggregate_type` the store holds."""
    total, after = 0, None
    while batch := store.recorder.streams(aggregate_type, after, STREAM_BATCH):
        total += len(batch)
        after = batch[-1][0]
    return total


def rebuild_snapshots(
    aggregate_class: type[Aggregate],
    store: EventStore,
    snapshots: SnapshotStore,
    interval: int,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Replace the snapshots of one aggregate type with one per stream at its current version.

    Streams shorter than `interval` get none. Each stream is replayed from its first event, so
    a stale or wrong snapshot cannot leak into the new one. Return how many were written.
    """
    snapshots.purge(aggregate_class.type_name)
    if not interval:
        return 0
    replay = Repository(aggregate_class, store, snapshots=snapshots, snapshot_interval=interval)
    replay_from_events = Repository(aggregate_class, store)
    written, after = 0, None
    while batch := store.recorder.streams(aggregate_class.type_name, after, STREAM_BATCH):
        for aggregate_id, version in batch:
            if version >= interval:
                replay.write_snapshot(replay_from_events.load(aggregate_id))
                written += 1
        after = batch[-1][0]
        if progress is not None:
            progress(len(batch))
    return written
