"""The protocols every storage backend implements: a recorder of events and a snapshot store."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from eventsourcing_app.core.records import (
    EventRecord,
    Position,
    ReplayEvent,
    SnapshotRecord,
    StoredEvent,
    StreamHead,
)


class Recorder(Protocol):
    """Store event records and read them back; everything else lives in `EventStore`."""

    def transaction(self) -> AbstractContextManager[None]:
        """Return a context in which a head read and an insert commit or roll back together."""

    def lock_stream(self, aggregate_id: uuid.UUID) -> None:
        """Hold a lock on the stream until the current transaction ends (writers queue)."""

    def stream_head(self, aggregate_id: uuid.UUID) -> StreamHead | None:
        """Return the last event of a stream, or None when the stream does not exist."""

    def insert(self, records: Sequence[EventRecord]) -> list[StoredEvent]:
        """Insert the records of one stream; raise `ConcurrencyError` if a version is taken."""

    def read_stream(
        self,
        aggregate_id: uuid.UUID,
        *,
        after_version: int,
        to_version: int | None,
        as_of: dt.datetime | None,
        limit: int,
    ) -> list[StoredEvent]:
        """Return up to `limit` events of a stream after a version, in version order."""

    def replay_stream(
        self, aggregate_id: uuid.UUID, *, after_version: int, to_version: int | None, limit: int
    ) -> list[ReplayEvent]:
        """`read_stream`, each event with only what an aggregate's replay needs."""

    def version_at(self, aggregate_id: uuid.UUID, as_of: dt.datetime) -> int | None:
        """Return the highest version of a stream stamped at or before `as_of`, or None."""

    def read_log(
        self,
        after: Position,
        limit: int,
        *,
        holdback: bool = True,
        event_types: Collection[str] | None = None,
    ) -> list[StoredEvent]:
        """Return up to `limit` committed events after `after`, in log order, never skipping one
        (with `holdback`, only those no open transaction can still precede), only of
        `event_types` when given."""

    def head(self) -> Position:
        """Return the position of the last event `read_log` can deliver now (START if none)."""

    def count_between(self, after: Position, upto: Position, cap: int) -> int:
        """Count events after `after` and at or before `upto`, up to `cap`."""

    def read_chains(
        self,
        after: tuple[uuid.UUID, int] | None,
        limit: int,
        aggregate_id: uuid.UUID | None,
    ) -> list[StoredEvent]:
        """Return events in (aggregate id, version) order after a key, for chain verification."""

    def streams(
        self, aggregate_type: str, after: uuid.UUID | None, limit: int
    ) -> list[tuple[uuid.UUID, int]]:
        """Return (aggregate id, version) of streams of one type after an id, in id order."""

    def count(self, aggregate_id: uuid.UUID | None = None) -> int:
        """Return how many events the store holds, in one stream or in all."""


class SnapshotStore(Protocol):
    """Keep snapshots; they are a cache, so losing any changes no answer, only speed."""

    def latest(
        self,
        aggregate_id: uuid.UUID,
        at_or_below: int | None,
        schema_version: int | None = None,
    ) -> SnapshotRecord | None:
        """Return the snapshot with the highest version at or below `at_or_below` (and of
        `schema_version`, when given)."""

    def save(self, snapshot: SnapshotRecord) -> None:
        """Store a snapshot; storing one that exists already changes nothing."""

    def purge(self, aggregate_type: str | None = None) -> int:
        """Delete the snapshots (of one aggregate type); return how many."""
