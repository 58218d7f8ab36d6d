"""In-memory backends: the reference recorder and snapshot store, fast enough for unit tests."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager

from eventsourcing_app.core.errors import ConcurrencyError, MissingPredecessor
from eventsourcing_app.core.records import (
    START,
    EventRecord,
    Position,
    ReplayEvent,
    SnapshotRecord,
    StoredEvent,
    StreamHead,
)


class InMemoryRecorder:
    """Keep events in lists; a lock makes each transaction serial, so the log never has gaps."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._log: list[StoredEvent] = []
        self._streams: dict[uuid.UUID, list[StoredEvent]] = {}
        self._pending: list[StoredEvent] | None = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            if self._pending is not None:
                yield
                return
            self._pending = []
            try:
                yield
                for event in self._pending:
                    self._log.append(event)
                    self._streams.setdefault(event.aggregate_id, []).append(event)
            finally:
                self._pending = None

    def lock_stream(self, aggregate_id: uuid.UUID) -> None:
        """Nothing to do: a transaction here holds the recorder's only lock."""

    def stream_head(self, aggregate_id: uuid.UUID) -> StreamHead | None:
        with self._lock:
            stream = self._streams.get(aggregate_id) or []
            pending = [e for e in self._pending or () if e.aggregate_id == aggregate_id]
            events = stream + pending
            if not events:
                return None
            last = events[-1]
            return StreamHead(last.aggregate_type, last.version, last.hash)

    def insert(self, records: Sequence[EventRecord]) -> list[StoredEvent]:
        with self.transaction():
            first = records[0]
            head = self.stream_head(first.aggregate_id)
            taken = head.version if head else 0
            if first.version <= taken:
                raise ConcurrencyError(first.aggregate_id, first.version - 1, taken)
            if first.version > 1 and not self._holds(first):
                raise MissingPredecessor(first.aggregate_id, first.version - 1)
            stored = []
            for record in records:
                next_id = len(self._log) + len(self._pending) + 1
                event = StoredEvent.from_record(record, id=next_id, transaction_id=0)
                self._pending.append(event)
                stored.append(event)
            return stored

    def _holds(self, record: EventRecord) -> bool:
        """Tell whether the event `record` chains onto is stored (or pending) with its hash."""
        stream = self._streams.get(record.aggregate_id, [])
        pending = [e for e in self._pending if e.aggregate_id == record.aggregate_id]
        return any(
            e.version == record.version - 1 and e.hash == record.previous_hash
            for e in stream + pending
        )

    def read_stream(
        self,
        aggregate_id: uuid.UUID,
        *,
        after_version: int,
        to_version: int | None,
        as_of: dt.datetime | None,
        limit: int,
    ) -> list[StoredEvent]:
        with self._lock:
            selected = [
                e
                for e in self._streams.get(aggregate_id, ())
                if e.version > after_version
                and (to_version is None or e.version <= to_version)
                and (as_of is None or e.created_at <= as_of)
            ]
        return selected[:limit]

    def replay_stream(
        self, aggregate_id: uuid.UUID, *, after_version: int, to_version: int | None, limit: int
    ) -> list[ReplayEvent]:
        events = self.read_stream(
            aggregate_id, after_version=after_version, to_version=to_version, as_of=None,
            limit=limit,
        )  # fmt: skip
        return [
            ReplayEvent(e.aggregate_id, e.aggregate_type, e.event_type, e.version,
                        e.schema_version, e.data, e.hash)
            for e in events
        ]  # fmt: skip

    def version_at(self, aggregate_id: uuid.UUID, as_of: dt.datetime) -> int | None:
        with self._lock:
            versions = [
                e.version for e in self._streams.get(aggregate_id, ()) if e.created_at <= as_of
            ]
        return max(versions, default=None)

    def read_log(
        self,
        after: Position,
        limit: int,
        *,
        holdback: bool = True,
        event_types: Collection[str] | None = None,
    ) -> list[StoredEvent]:
        with self._lock:
            if event_types is None:
                return self._log[after.id : after.id + limit]
            later = (event for event in self._log[after.id :] if event.event_type in event_types)
            return list(itertools.islice(later, limit))

    def head(self) -> Position:
        with self._lock:
            return self._log[-1].position if self._log else START

    def count_between(self, after: Position, upto: Position, cap: int) -> int:
        return max(0, min(upto.id - after.id, cap))

    def read_chains(
        self,
        after: tuple[uuid.UUID, int] | None,
        limit: int,
        aggregate_id: uuid.UUID | None,
    ) -> list[StoredEvent]:
        with self._lock:
            events = sorted(
                (e for e in self._log if aggregate_id is None or e.aggregate_id == aggregate_id),
                key=_chain_key,
            )
        if after is not None:
            events = [e for e in events if _chain_key(e) > (str(after[0]), after[1])]
        return events[:limit]

    def streams(
        self, aggregate_type: str, after: uuid.UUID | None, limit: int
    ) -> list[tuple[uuid.UUID, int]]:
        with self._lock:
            found = sorted(
                (str(aggregate_id), aggregate_id, events[-1].version)
                for aggregate_id, events in self._streams.items()
                if events[0].aggregate_type == aggregate_type
                and (after is None or str(aggregate_id) > str(after))
            )
        return [(aggregate_id, version) for _, aggregate_id, version in found[:limit]]

    def count(self, aggregate_id: uuid.UUID | None = None) -> int:
        with self._lock:
            if aggregate_id is None:
                return len(self._log)
            return len(self._streams.get(aggregate_id, ()))


def _chain_key(event: StoredEvent) -> tuple[str, int]:
    return (str(event.aggregate_id), event.version)


class InMemorySnapshotStore:
    """Snapshots in a dict, for tests and for the in-memory recorder."""

    def __init__(self) -> None:
        self._snapshots: dict[uuid.UUID, dict[int, SnapshotRecord]] = {}
        self._lock = threading.Lock()

    def latest(
        self,
        aggregate_id: uuid.UUID,
        at_or_below: int | None,
        schema_version: int | None = None,
    ) -> SnapshotRecord | None:
        with self._lock:
            found = [
                snapshot
                for version, snapshot in self._snapshots.get(aggregate_id, {}).items()
                if (at_or_below is None or version <= at_or_below)
                and (schema_version is None or snapshot.schema_version == schema_version)
            ]
            return max(found, key=lambda snapshot: snapshot.version, default=None)

    def save(self, snapshot: SnapshotRecord) -> None:
        with self._lock:
            self._snapshots.setdefault(snapshot.aggregate_id, {}).setdefault(
                snapshot.version, snapshot
            )

    def purge(self, aggregate_type: str | None = None) -> int:
        with self._lock:
            removed = 0
            for versions in self._snapshots.values():
                for version, snapshot in list(versions.items()):
                    if aggregate_type is None or snapshot.aggregate_type == aggregate_type:
                        del versions[version]
                        removed += 1
            return removed
