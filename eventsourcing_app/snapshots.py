"""Snapshot storage: the protocol, and an in-memory store for tests and embedded use."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class SnapshotRecord:
    """An aggregate's encoded state after `version` events."""

    aggregate_id: uuid.UUID
    aggregate_type: str
    version: int
    state: dict[str, Any]
    schema_version: int
    created_at: dt.datetime | None = field(default=None, compare=False)


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
