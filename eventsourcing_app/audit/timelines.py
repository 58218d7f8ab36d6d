"""What the audit pages show: an aggregate's timeline with the state after each event and the
diff from the one before, state at a point in time, comparisons, and correlation trails."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from eventsourcing_app.core.errors import DomainError
from eventsourcing_app.core.mapper import EventMapper
from eventsourcing_app.core.records import StoredEvent
from eventsourcing_app.core.store import EventStore
from eventsourcing_app.core.verification import VerificationReport, verify_chains
from eventsourcing_app.domain.aggregate import Aggregate, aggregate_types

MAX_TIMELINE = 2000


@dataclass
class Change:
    name: str
    before: Any
    after: Any


@dataclass
class TimelineEntry:
    """One event with who/when/why, its data as stored and upcast, and the state it left."""

    event: StoredEvent
    upcast_data: dict[str, Any] | None
    state: dict[str, Any]
    changes: list[Change] = field(default_factory=list)
    error: str = ""

    @property
    def upcast(self) -> bool:
        return self.upcast_data is not None and self.upcast_data != self.event.data


def state_of(aggregate: Aggregate) -> dict[str, Any]:
    """The aggregate's public state as plain values (for display and diffs)."""
    return {
        name: _plain(value)
        for name, value in vars(aggregate).items()
        if not name.startswith("_") and name not in ("id", "version")
    }


def _plain(value: Any) -> Any:
    """A value as a person reads it: money and ids as text, collections item by item."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return repr(value)


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """Return the fields whose value changed, in the order of `after`."""
    return [
        Change(name, before.get(name), value)
        for name, value in after.items()
        if before.get(name) != value
    ] + [Change(name, value, None) for name, value in before.items() if name not in after]


def timeline(store: EventStore, aggregate_id: uuid.UUID, mapper: EventMapper | None = None):
    """Return the stream's timeline (up to MAX_TIMELINE events) and its aggregate class."""
    mapper = mapper or EventMapper()
    entries: list[TimelineEntry] = []
    aggregate = None
    cls = None
    previous: dict[str, Any] = {}
    for stored in store.read_stream(aggregate_id):
        if len(entries) >= MAX_TIMELINE:
            break
        if aggregate is None:
            cls = aggregate_types.get(stored.aggregate_type)
            aggregate = cls(aggregate_id) if cls else None
        upcast_data, error, state = None, "", previous
        if stored.event_type in mapper.events:
            try:
                target = mapper.events.event_class(stored.event_type).schema_version
                upcast_data = mapper.upcasters.upcast(
                    stored.event_type, stored.schema_version, stored.data, target
                )
                if aggregate is not None:
                    aggregate.apply(mapper.to_domain(stored))
                    state = state_of(aggregate)
            except DomainError as exc:
                error = str(exc)
        entries.append(TimelineEntry(stored, upcast_data, state, diff(previous, state), error))
        previous = state
    return entries, cls


def tamper_check(store: EventStore, aggregate_id: uuid.UUID) -> VerificationReport:
    return verify_chains(store.recorder, aggregate_id=aggregate_id)


def parse_point(value: str | None) -> int | dt.datetime | None:
    """Parse a point in time from a form: a version number or an ISO-8601 date-time."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    moment = dt.datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
