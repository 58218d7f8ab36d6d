"""Walk every stream's hash chain and report the events whose stored content no longer matches."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from eventsourcing_app.core.hashchain import canonical_json, event_hash, timestamp_text
from eventsourcing_app.core.protocols import Recorder
from eventsourcing_app.core.records import GENESIS_HASH, StoredEvent

MAX_REPORTED_BREAKS = 100


@dataclass(frozen=True)
class ChainBreak:
    """One event where a chain is broken, and why."""

    event_id: int
    aggregate_id: uuid.UUID
    version: int
    reason: str

    def __str__(self) -> str:
        return f"event {self.event_id} ({self.aggregate_id} v{self.version}): {self.reason}"


@dataclass
class VerificationReport:
    """What a verification pass saw."""

    events_checked: int = 0
    streams_checked: int = 0
    break_count: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return self.break_count == 0

    def add(self, event: StoredEvent, reason: str) -> None:
        self.break_count += 1
        if len(self.breaks) < MAX_REPORTED_BREAKS:
            self.breaks.append(ChainBreak(event.id, event.aggregate_id, event.version, reason))


def verify_chains(
    recorder: Recorder,
    *,
    aggregate_id: uuid.UUID | None = None,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
    each: Callable[[StoredEvent, VerificationReport], None] | None = None,
) -> VerificationReport:
    """Check every event's hash and link, stream by stream, reading in constant memory.

    `each` sees every event after its own check, so that a caller adds checks of its own in
    the same single read.
    """
    report = VerificationReport()
    stream, expected_version, previous = None, 1, GENESIS_HASH
    after = None
    while True:
        batch = recorder.read_chains(after, batch_size, aggregate_id)
        for event in batch:
            if event.aggregate_id != stream:
                stream, expected_version, previous = event.aggregate_id, 1, GENESIS_HASH
                report.streams_checked += 1
            check_event(event, expected_version, previous, report)
            if each is not None:
                each(event, report)
            expected_version, previous = event.version + 1, event.hash
        report.events_checked += len(batch)
        if progress is not None and batch:
            progress(len(batch))
        if len(batch) < batch_size:
            return report
        after = (batch[-1].aggregate_id, batch[-1].version)


def check_event(
    event: StoredEvent, expected_version: int, previous: str, report: VerificationReport
) -> None:
    """Add to `report` what is wrong with `event` after `previous`: its version, link, hash."""
    if event.version != expected_version:
        report.add(
            event,
            f"version {event.version} where {expected_version} was due: events are missing",
        )
    elif event.previous_hash != previous:
        report.add(event, "its previous_hash does not match the event before it")
    if recomputed_hash(event) != event.hash:
        report.add(event, "its content does not match its hash: the row was altered")


def recomputed_hash(event, *, data=None, previous_hash: str | None = None) -> str:
    """Return the hash of `event`'s content, or of `data` in its place, after `previous_hash`.

    `event` is a stored event or a row of the events table; by default its own data and link.
    """
    if data is None:
        data = event.data if hasattr(event, "data") else event.event_data
    return event_hash(
        aggregate_id=event.aggregate_id,
        aggregate_type=event.aggregate_type,
        version=event.version,
        event_type=event.event_type,
        schema_version=event.schema_version,
        canonical_data=canonical_json(data),
        canonical_metadata=canonical_json(event.metadata, "metadata"),
        created_at=timestamp_text(event.created_at),
        previous_hash=event.previous_hash if previous_hash is None else previous_hash,
    )
