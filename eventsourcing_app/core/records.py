"""Value types that travel between the event store and its recorders."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class ExpectedVersion(enum.Enum):
    """Expected versions that are not a number."""

    NO_STREAM = "no stream"
    ANY = "any"

    def __str__(self) -> str:
        return self.value


NO_STREAM = ExpectedVersion.NO_STREAM
ANY = ExpectedVersion.ANY

GENESIS_HASH = "0" * 64


class Position(NamedTuple):
    """A place in the global log: the writing transaction, then the row id.

    On PostgreSQL ids are handed out before commit, so a reader orders by the writing
    transaction first; on SQLite and in memory writers are serial and `transaction` is 0.
    """

    transaction: int
    id: int

    def __str__(self) -> str:
        return f"{self.transaction}-{self.id}"

    @classmethod
    def parse(cls, text: str) -> Position:
        """Return the position written as `"<transaction>-<id>"`."""
        try:
            transaction, _, row_id = text.partition("-")
            position = cls(int(transaction), int(row_id))
        except (TypeError, ValueError):
            raise ValueError(f"{text!r} is not a log position like '0-42'") from None
        if position.transaction < 0 or position.id < 0:
            raise ValueError(f"{text!r} is not a log position like '0-42'")
        return position


START = Position(0, 0)


@dataclass(frozen=True)
class NewEvent:
    """An event to append: its type name, its JSON data and optional extra metadata."""

    event_type: str
    data: Mapping[str, Any]
    schema_version: int = 1
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamHead:
    """The last event of a stream: what an append checks and chains onto."""

    aggregate_type: str
    version: int
    hash: str


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A validated, hashed event ready to be inserted by a recorder."""

    aggregate_id: uuid.UUID
    aggregate_type: str
    event_type: str
    version: int
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    created_at: dt.datetime
    hash: str
    previous_hash: str


class ReplayEvent(NamedTuple):
    """What rebuilding an aggregate needs of a stored event (`EventStore.replay_stream`): its
    type, version and data, and the hash an append chains onto. No metadata, time or position:
    reading and decoding those for every event of a long stream cost a load about half of its
    time, and no aggregate applies them."""

    aggregate_id: uuid.UUID
    aggregate_type: str
    event_type: str
    version: int
    schema_version: int
    data: dict[str, Any]
    hash: str


class EventHash(NamedTuple):
    """What the ledger seals of an event: its place in the log, its stream and its hash."""

    id: int
    transaction_id: int
    aggregate_id: uuid.UUID
    version: int
    hash: str

    @property
    def position(self) -> Position:
        return Position(self.transaction_id, self.id)


@dataclass(frozen=True, slots=True)
class StoredEvent(EventRecord):
    """An event as the store holds it, with its place in the global log."""

    id: int
    transaction_id: int

    @property
    def position(self) -> Position:
        return Position(self.transaction_id, self.id)

    @classmethod
    def from_record(cls, record: EventRecord, *, id: int, transaction_id: int) -> StoredEvent:
        return stored_event(
            record.aggregate_id,
            record.aggregate_type,
            record.event_type,
            record.version,
            record.schema_version,
            record.data,
            dict(record.metadata),  # records of one append share the dict
            record.created_at,
            record.hash,
            record.previous_hash,
            id,
            transaction_id,
        )


# Each field's own slot setter: a frozen dataclass's __init__ goes through object.__setattr__
# once a field, and the log's reads build one StoredEvent per row.
(
    _set_aggregate_id,
    _set_aggregate_type,
    _set_event_type,
    _set_version,
    _set_schema_version,
    _set_data,
    _set_metadata,
    _set_created_at,
    _set_hash,
    _set_previous_hash,
    _set_id,
    _set_transaction_id,
) = (getattr(StoredEvent, field.name).__set__ for field in dataclasses.fields(StoredEvent))
_new = object.__new__


def stored_event(
    aggregate_id: uuid.UUID,
    aggregate_type: str,
    event_type: str,
    version: int,
    schema_version: int,
    data: dict[str, Any],
    metadata: dict[str, Any],
    created_at: dt.datetime,
    hash: str,
    previous_hash: str,
    id: int,
    transaction_id: int,
) -> StoredEvent:
    """`StoredEvent(...)` (the same fields, in the same order) in about half the time."""
    event = _new(StoredEvent)
    _set_aggregate_id(event, aggregate_id)
    _set_aggregate_type(event, aggregate_type)
    _set_event_type(event, event_type)
    _set_version(event, version)
    _set_schema_version(event, schema_version)
    _set_data(event, data)
    _set_metadata(event, metadata)
    _set_created_at(event, created_at)
    _set_hash(event, hash)
    _set_previous_hash(event, previous_hash)
    _set_id(event, id)
    _set_transaction_id(event, transaction_id)
    return event


@dataclass(frozen=True)
class SnapshotRecord:
    """An aggregate's encoded state after `version` events."""

    aggregate_id: uuid.UUID
    aggregate_type: str
    version: int
    state: dict[str, Any]
    schema_version: int
    created_at: dt.datetime | None = field(default=None, compare=False)


RECORD_FIELDS = tuple(field.name for field in dataclasses.fields(EventRecord))
