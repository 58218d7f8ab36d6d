"""Load aggregates by replaying their events (from the latest usable snapshot) and save them."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from eventsourcing_app.core.errors import AggregateNotFound, ConcurrencyError
from eventsourcing_app.core.mapper import EventMapper
from eventsourcing_app.core.protocols import SnapshotStore
from eventsourcing_app.core.records import (
    NO_STREAM,
    NewEvent,
    ReplayEvent,
    SnapshotRecord,
    StoredEvent,
)
from eventsourcing_app.core.store import EventStore
from eventsourcing_app.domain.aggregate import Aggregate
from eventsourcing_app.domain.events import DomainEvent, EventRegistry, registry
from eventsourcing_app.domain.upcasting import Upcasters, upcasters

A = TypeVar("A", bound=Aggregate)
logger = logging.getLogger(__name__)


class Repository(Generic[A]):
    """Load and save aggregates of one class on an event store."""

    def __init__(
        self,
        aggregate_class: type[A],
        store: EventStore,
        *,
        snapshots: SnapshotStore | None = None,
        snapshot_interval: int | None = None,
        events: EventRegistry = registry,
        upcasters: Upcasters = upcasters,
    ) -> None:
        self.aggregate_class = aggregate_class
        self.store = store
        self.snapshots = snapshots
        self.snapshot_interval = snapshot_interval
        self.events = events
        self.mapper = EventMapper(events, upcasters, getattr(store, "cipher", None))
        self.stale_snapshots = 0
        self.failed_snapshots = 0

    def load(
        self,
        aggregate_id: uuid.UUID | str,
        *,
        version: int | None = None,
        as_of: dt.datetime | None = None,
    ) -> A:
        """Return the aggregate now, after `version` events, or as it was at `as_of`.

        `as_of` means the stream up to its last event stamped at or before that time. Raise
        `AggregateNotFound` when there is no such aggregate, or none yet at that version or time.
        """
        aggregate_id = _uuid(aggregate_id)
        name = f"{self.aggregate_class.__name__} {aggregate_id}"
        if version is not None and as_of is not None:
            raise ValueError("load() takes a version or a time, not both")
        if version is not None and (
            isinstance(version, bool) or not isinstance(version, int) or version < 1
        ):
            raise ValueError(f"version must be a positive integer, not {version!r}")
        target = version
        if as_of is not None:
            target = self.store.version_at(aggregate_id, as_of)
            if target is None:
                raise AggregateNotFound(f"{name} did not exist at {as_of.isoformat()}")
        aggregate = self._from_snapshot(aggregate_id, target)
        type_name, apply, to_domain = (
            self.aggregate_class.type_name,
            aggregate.apply,
            self.to_domain,
        )
        for stored in self.store.replay_stream(
            aggregate_id, after_version=aggregate.version, to_version=target
        ):
            if stored.aggregate_type != type_name:
                raise AggregateNotFound(f"{aggregate_id} is a {stored.aggregate_type}, not {name}")
            apply(to_domain(stored))
        if aggregate.version == 0:
            raise AggregateNotFound(f"no {name}")
        if target is not None and aggregate.version != target:
            raise AggregateNotFound(f"{name} has {aggregate.version} events, not {target}")
        return aggregate

    def save(self, aggregate: A, *, imported_at: dt.datetime | None = None) -> list[StoredEvent]:
        """Append the aggregate's pending events, expecting the version it was loaded at.

        `imported_at` stamps them with a past time (see `EventStore.append`).

        Raise `ConcurrencyError` when another writer got there first. A snapshot is written in
        the same transaction when the new events cross a multiple of the snapshot interval.
        """
        pending = aggregate.pending_events
        if not pending:
            return []
        events = [
            NewEvent(event.type_name, self.events.encode(event), event.schema_version)
            for event in pending
        ]
        expected = aggregate.original_version or NO_STREAM
        interval = self.snapshot_interval
        snapshot_due = (
            self.snapshots is not None
            and bool(interval)
            and aggregate.original_version // interval < aggregate.version // interval
        )
        append = lambda: self.store.append(  # noqa: E731
            aggregate.id,
            events,
            expected_version=expected,
            aggregate_type=aggregate.type_name,
            imported_at=imported_at,
        )
        if not snapshot_due:
            stored = append()
        else:
            with self.store.recorder.transaction():
                stored = append()
                self.write_snapshot(aggregate)
        aggregate.mark_saved()
        return stored

    def execute(
        self,
        aggregate_id: uuid.UUID | str,
        command: Callable[[A], Any],
        *,
        attempts: int = 3,
        serialize: bool = False,
    ) -> tuple[A, list[StoredEvent]]:
        """Load, run `command(aggregate)`, save; on a conflict reload and run it again.

        For commands whose outcome depends only on the aggregate's current state. Raise the
        last `ConcurrencyError` after `attempts` tries. With `serialize`, each try holds the
        stream's lock from load to save, so such commands on one hot aggregate queue up
        instead of failing each other (writers that do not lock still get conflicts).
        """
        if attempts < 1:
            raise ValueError("attempts must be 1 or more")
        aggregate_id = _uuid(aggregate_id)
        for attempt in range(1, attempts + 1):
            try:
                if not serialize:
                    return self._load_run_save(aggregate_id, command)
                with self.store.recorder.transaction():
                    self.store.recorder.lock_stream(aggregate_id)
                    return self._load_run_save(aggregate_id, command)
            except ConcurrencyError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def _load_run_save(self, aggregate_id: uuid.UUID, command) -> tuple[A, list[StoredEvent]]:
        aggregate = self.load(aggregate_id)
        command(aggregate)
        return aggregate, self.save(aggregate)

    def to_domain(self, stored: StoredEvent | ReplayEvent) -> DomainEvent:
        """Turn a stored event into its domain event, upcast to the current schema."""
        return self.mapper.to_domain(stored)

    def _from_snapshot(self, aggregate_id: uuid.UUID, target: int | None) -> A:
        cls = self.aggregate_class
        if self.snapshots is None:
            return cls(aggregate_id)
        snapshot = self.snapshots.latest(aggregate_id, at_or_below=target)
        if snapshot is not None and snapshot.schema_version != cls.snapshot_schema_version:
            self._stale(snapshot, f"its schema is v{snapshot.schema_version}")
            snapshot = self.snapshots.latest(
                aggregate_id, at_or_below=target, schema_version=cls.snapshot_schema_version
            )
        if snapshot is None:
            return cls(aggregate_id)
        try:
            if snapshot.aggregate_type != cls.type_name:
                raise ValueError(f"it is a {snapshot.aggregate_type}")
            return cls.from_snapshot(aggregate_id, snapshot.version, snapshot.state)
        except Exception as exc:  # a snapshot is a cache: whatever is wrong with it is a miss
            self._stale(snapshot, str(exc))
            return cls(aggregate_id)

    def _stale(self, snapshot: SnapshotRecord, reason: str) -> None:
        self.stale_snapshots += 1
        logger.warning(
            "ignoring the snapshot of %s %s at v%s: %s",
            self.aggregate_class.__name__,
            snapshot.aggregate_id,
            snapshot.version,
            reason,
        )

    def write_snapshot(self, aggregate: A) -> None:
        """Store a snapshot of `aggregate` as it is now (a failure to encode is logged)."""
        try:
            state = aggregate.snapshot_state()
        except Exception:  # never fail a save for a cache
            self.failed_snapshots += 1
            logger.exception("cannot snapshot %s %s", type(aggregate).__name__, aggregate.id)
            return
        self.snapshots.save(
            SnapshotRecord(
                aggregate_id=aggregate.id,
                aggregate_type=aggregate.type_name,
                version=aggregate.version,
                state=state,
                schema_version=aggregate.snapshot_schema_version,
            )
        )


def _uuid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise AggregateNotFound(f"{value!r} is not an aggregate id (a UUID)") from None
