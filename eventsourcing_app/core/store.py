"""Append events to streams with optimistic concurrency, and read streams and the global log."""

from __future__ import annotations

import datetime as dt
import functools
import re
import uuid
from collections.abc import Callable, Collection, Container, Iterator, Mapping, Sequence
from typing import Any

from eventsourcing_app.conf import DEFAULTS
from eventsourcing_app.core.context import current_metadata
from eventsourcing_app.core.errors import (
    ConcurrencyError,
    InvalidAppend,
    MissingPredecessor,
    StreamTypeMismatch,
)
from eventsourcing_app.core.hashchain import (
    canonical_json,
    event_hash,
    fast_canonical_json,
    fast_canonical_object,
    timestamp_text,
)
from eventsourcing_app.core.heads import StreamHeads
from eventsourcing_app.core.personal import Cipher, Sealing
from eventsourcing_app.core.protocols import Recorder
from eventsourcing_app.core.records import (
    ANY,
    GENESIS_HASH,
    NO_STREAM,
    START,
    EventRecord,
    ExpectedVersion,
    NewEvent,
    Position,
    ReplayEvent,
    StoredEvent,
    StreamHead,
    stored_event,
)

TYPE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")
MAX_NAME_LENGTH = 100
MAX_SCHEMA_VERSION = 32767


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class EventStore:
    """The event store: validates, versions and hashes events, then hands them to a recorder."""

    def __init__(
        self,
        recorder: Recorder,
        *,
        event_types: Container[str] | None = None,
        metadata: Callable[[], dict[str, Any]] = current_metadata,
        clock: Callable[[], dt.datetime] = utc_now,
        read_batch_size: int = DEFAULTS["READ_BATCH_SIZE"],
        any_version_retries: int = DEFAULTS["ANY_VERSION_RETRIES"],
        heads: StreamHeads | None = None,
        after_append: Callable[[list[StoredEvent]], None] | None = None,
        cipher: Cipher | None = None,
    ) -> None:
        self.recorder = recorder
        self.event_types = event_types
        self.metadata = metadata
        self.clock = clock
        self.read_batch_size = read_batch_size
        self.any_version_retries = any_version_retries
        self.heads = heads if heads is not None else StreamHeads()
        # Called inside the append's transaction with the stored events, on every recorder:
        # the app's wiring sends `events_appended` from here, so that inline projections run
        # the same way on every backend. An exception rolls the append back.
        self.after_append = after_append
        # Seals the declared personal fields of each event inside the append's transaction
        # (where a new subject's key is made); None: personal fields are stored as given.
        self.cipher = cipher

    def append(
        self,
        stream: uuid.UUID | str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | ExpectedVersion,
        aggregate_type: str,
        imported_at: dt.datetime | None = None,
    ) -> list[StoredEvent]:
        """Append `events` to `stream` in one transaction and return them as stored.

        `expected_version` is the version the stream must be at: an exact number (0 meaning no
        stream), `NO_STREAM` or `ANY`. Raise `ConcurrencyError` when the stream is elsewhere,
        including above its end, and `InvalidAppend` for malformed input; either way nothing
        is written.

        Events are stamped with the real time. `imported_at` is for history that happened
        before (migrations from another system, demo data): the events are stamped with it and
        marked `{"imported": true, "recorded_at": <real time>}` in their metadata.
        """
        aggregate_id = _aggregate_id(stream)
        _check_expected_version(expected_version)
        _check_name(aggregate_type, "aggregate type")
        if isinstance(events, (NewEvent, str, bytes)) or not isinstance(events, Sequence):
            raise InvalidAppend("events must be a list of NewEvent")
        if not events:
            raise InvalidAppend("an append needs at least one event")
        context = self.metadata()
        stamp = self.clock
        if imported_at is not None:
            if imported_at.tzinfo is None:
                raise InvalidAppend("imported_at must be timezone-aware")
            context = {**context, "imported": True, "recorded_at": self.clock().isoformat()}
            stamp = lambda: imported_at  # noqa: E731
        # Events without metadata of their own share the context's dict and its canonical form.
        shared = (context, canonical_json(context, "metadata"))
        prepared = [self._prepare(event, shared, index) for index, event in enumerate(events)]
        attempts = self.any_version_retries + 1 if expected_version is ANY else 1
        attempt, trust_heads = 0, True
        while True:
            try:
                return self._append_once(
                    aggregate_id, aggregate_type, prepared, expected_version, trust_heads, stamp
                )
            except MissingPredecessor as missing:
                self.heads.forget(aggregate_id)
                if trust_heads:
                    trust_heads = False  # the remembered head was never committed: read it
                    continue
                conflict = missing
            except ConcurrencyError as error:
                conflict = error
            self.heads.forget(aggregate_id)
            attempt += 1
            if attempt < attempts:
                continue
            head = self.recorder.stream_head(aggregate_id)
            actual = head.version if head else None
            raise ConcurrencyError(aggregate_id, expected_version, actual) from conflict

    def _prepare(self, event: NewEvent, shared: tuple[dict, str], index: int) -> tuple:
        if type(event) is not NewEvent and not isinstance(event, NewEvent):
            raise InvalidAppend(f"events[{index}] is a {type(event).__name__}, not a NewEvent")
        if event.event_type not in _VALID_NAMES:
            _check_name(event.event_type, f"events[{index}].event_type")
        if self.event_types is not None and event.event_type not in self.event_types:
            raise InvalidAppend(f"events[{index}] has the unknown event type {event.event_type!r}")
        schema_version = event.schema_version
        if type(schema_version) is not int or not 1 <= schema_version <= MAX_SCHEMA_VERSION:
            raise InvalidAppend(
                f"events[{index}].schema_version must be an integer from 1 to "
                f"{MAX_SCHEMA_VERSION}, not {schema_version!r}"
            )
        if type(event.data) is not dict and not isinstance(event.data, Mapping):
            raise InvalidAppend(f"events[{index}].data must be a JSON object (a dict)")
        if type(event.metadata) is not dict and not isinstance(event.metadata, Mapping):
            raise InvalidAppend(f"events[{index}].metadata must be a dict")
        if self.cipher is not None and event.event_type in self.cipher.declared:
            # Sealed, then encoded, inside the append's transaction, into a dict of the store's
            # own: inline projections get the data as given, the caller's dict, unchanged.
            data = event.data if type(event.data) is dict else dict(event.data)
            canonical_data = None
        else:
            data = dict(event.data)
            canonical_data = fast_canonical_json(data)
            if canonical_data is None:  # something unusual: the careful encoder names it
                canonical_data = canonical_json(data, f"events[{index}].data")
        if event.metadata:
            metadata = {**shared[0], **event.metadata}
            canonical_metadata = canonical_json(metadata, f"events[{index}].metadata")
        else:
            metadata, canonical_metadata = shared
        return event, data, metadata, canonical_data, canonical_metadata

    def _append_once(
        self,
        aggregate_id: uuid.UUID,
        aggregate_type: str,
        prepared: list[tuple],
        expected_version: int | ExpectedVersion,
        trust_heads: bool,
        stamp: Callable[[], dt.datetime],
    ) -> list[StoredEvent]:
        if expected_version is NO_STREAM:
            expected_version = 0
        with self.recorder.transaction():
            head = self._head(aggregate_id, expected_version, trust_heads)
            current = head.version if head else 0
            if head is not None and head.aggregate_type != aggregate_type:
                raise StreamTypeMismatch(
                    f"stream {aggregate_id} holds a {head.aggregate_type}, not a {aggregate_type}"
                )
            if expected_version is not ANY and expected_version != current:
                raise ConcurrencyError(aggregate_id, expected_version, current if head else None)
            created_at = stamp()
            created_text = timestamp_text(created_at)
            previous_hash = head.hash if head else GENESIS_HASH
            aggregate_text = str(aggregate_id)
            records, plain, sealing = [], {}, None
            for offset, (
                event,
                data,
                metadata,
                canonical_data,
                canonical_metadata,
            ) in enumerate(prepared, start=1):
                version = current + offset
                if canonical_data is None:
                    plain[offset - 1] = data
                    if sealing is None:
                        sealing = Sealing()
                    data, canonical_data = self._seal(event.event_type, aggregate_id, data,
                                                      offset - 1, sealing)  # fmt: skip
                digest = event_hash(
                    aggregate_id=aggregate_text,
                    aggregate_type=aggregate_type,
                    version=version,
                    event_type=event.event_type,
                    schema_version=event.schema_version,
                    canonical_data=canonical_data,
                    canonical_metadata=canonical_metadata,
                    created_at=created_text,
                    previous_hash=previous_hash,
                )
                records.append(
                    EventRecord(
                        aggregate_id=aggregate_id,
                        aggregate_type=aggregate_type,
                        event_type=event.event_type,
                        version=version,
                        schema_version=event.schema_version,
                        data=data,
                        metadata=metadata,
                        created_at=created_at,
                        hash=digest,
                        previous_hash=previous_hash,
                    )
                )
                previous_hash = digest
            stored = self.recorder.insert(records)
            # The records are done with: freed before the projections' copies are made, an
            # append of 100 sealed events stays under Python's collector's first threshold.
            del records
            if self.after_append is not None:
                # Inline projections get the personal fields as given, not their envelopes.
                self.after_append(_with_plain_data(stored, plain) if plain else stored)
            self.heads.remember(aggregate_id, StreamHead(aggregate_type, version, digest))
            return stored

    def _seal(
        self, event_type: str, aggregate_id: uuid.UUID, data: dict, index: int, sealing: Sealing
    ):
        """Return the event's data with its personal fields sealed, and its canonical form;
        `sealing` is what this append's seals share."""
        texts: dict[str, str] = {}
        try:
            sealed = self.cipher.seal(event_type, aggregate_id, data, sealing, texts)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, InvalidAppend):
                raise
            raise InvalidAppend(f"events[{index}].data cannot be sealed: {exc}") from None
        if sealed is data:  # no personal field given: the store's own copy all the same
            sealed = dict(data)
        canonical = fast_canonical_object(sealed, texts)
        if canonical is None:
            canonical = canonical_json(sealed, f"events[{index}].data")
        return sealed, canonical

    def _head(
        self,
        aggregate_id: uuid.UUID,
        expected_version: int | ExpectedVersion,
        trust_heads: bool,
    ) -> StreamHead | None:
        if expected_version == 0:
            return None  # a new stream needs no read: if it exists, inserting version 1 conflicts
        if trust_heads and expected_version is not ANY:
            remembered = self.heads.get(aggregate_id)
            if remembered is not None and remembered.version == expected_version:
                return remembered
        return self.recorder.stream_head(aggregate_id)

    def read_stream(
        self,
        stream: uuid.UUID | str,
        *,
        to_version: int | None = None,
        as_of: dt.datetime | None = None,
        after_version: int = 0,
    ) -> Iterator[StoredEvent]:
        """Yield a stream's events in version order, up to a version and/or a time, in batches."""
        aggregate_id = _aggregate_id(stream)
        if as_of is not None and as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")
        read = functools.partial(
            self.recorder.read_stream, aggregate_id, to_version=to_version, as_of=as_of
        )
        return self._batches(
            aggregate_id, read, after_version, whole=to_version is None and as_of is None
        )

    def replay_stream(
        self, stream: uuid.UUID | str, *, after_version: int = 0, to_version: int | None = None
    ) -> Iterator[ReplayEvent]:
        """Yield a stream's events in version order, up to a version, in batches, each with
        only what rebuilding an aggregate needs (`ReplayEvent`): what `Repository.load` reads."""
        aggregate_id = _aggregate_id(stream)
        read = functools.partial(self.recorder.replay_stream, aggregate_id, to_version=to_version)
        return self._batches(aggregate_id, read, after_version, whole=to_version is None)

    def _batches(self, aggregate_id: uuid.UUID, read, after_version: int, whole: bool):
        """Yield what `read(after_version=..., limit=...)` gives, a batch at a time; when the
        whole stream was read, remember its last event as the stream's head."""
        last = None
        while True:
            batch = read(after_version=after_version, limit=self.read_batch_size)
            yield from batch
            last = batch[-1] if batch else last
            if len(batch) < self.read_batch_size:
                break
            after_version = batch[-1].version
        if last is not None and whole:
            self.heads.remember(
                aggregate_id, StreamHead(last.aggregate_type, last.version, last.hash)
            )

    def read_log(
        self,
        after: Position = START,
        *,
        limit: int | None = None,
        holdback: bool = True,
        event_types: Collection[str] | None = None,
    ) -> Iterator[StoredEvent]:
        """Yield committed events after `after` in log order, streaming in batches.

        The order is the one a checkpoint can follow: an event is never delivered behind one
        already delivered, so a reader that resumes from the last position it saw misses nothing.
        `holdback=False` delivers every committed event at once instead, which is safe only
        while no writer that matters can commit (rebuilding an inline projection under a lock).
        `event_types` leaves out the events of other types (the order stays the log's).
        """
        delivered = 0
        while limit is None or delivered < limit:
            size = (
                self.read_batch_size
                if limit is None
                else min(self.read_batch_size, limit - delivered)
            )
            batch = self.recorder.read_log(after, size, holdback=holdback, event_types=event_types)
            yield from batch
            delivered += len(batch)
            if len(batch) < size:
                return
            after = batch[-1].position

    def head(self) -> Position:
        """Return the position of the last event a log reader can be given now."""
        return self.recorder.head()

    def count_between(self, after: Position, upto: Position, cap: int) -> int:
        """Count the events after `after` up to `upto`, stopping at `cap`."""
        return self.recorder.count_between(after, upto, cap)

    def version_at(self, stream: uuid.UUID | str, as_of: dt.datetime) -> int | None:
        """Return the version of the stream's last event stamped at or before `as_of`."""
        if as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")
        return self.recorder.version_at(_aggregate_id(stream), as_of)

    def stream_version(self, stream: uuid.UUID | str) -> int | None:
        """Return the stream's current version, or None when it does not exist."""
        head = self.recorder.stream_head(_aggregate_id(stream))
        return head.version if head else None


def _with_plain_data(stored: list[StoredEvent], plain: dict[int, dict]) -> list[StoredEvent]:
    """The stored events, those of `plain` with their data as given (built field by field:
    `dataclasses.replace` costs several times more)."""
    return [_with_data(event, plain[index]) if index in plain else event
            for index, event in enumerate(stored)]  # fmt: skip


def _with_data(e: StoredEvent, data: dict) -> StoredEvent:
    return stored_event(e.aggregate_id, e.aggregate_type, e.event_type, e.version,
                        e.schema_version, data, e.metadata, e.created_at, e.hash,
                        e.previous_hash, e.id, e.transaction_id)  # fmt: skip


def _aggregate_id(stream: Any) -> uuid.UUID:
    if isinstance(stream, uuid.UUID):
        return stream
    if isinstance(stream, str):
        try:
            return uuid.UUID(stream)
        except ValueError:
            pass
    raise InvalidAppend(f"aggregate id {stream!r} is not a UUID")


def _check_expected_version(expected: Any) -> None:
    if isinstance(expected, ExpectedVersion):
        return
    if isinstance(expected, bool) or not isinstance(expected, int):
        raise InvalidAppend(
            f"expected_version must be an int, NO_STREAM or ANY, not {type(expected).__name__} "
            f"{expected!r}"
        )
    if expected < 0:
        raise InvalidAppend(f"expected_version must not be negative, not {expected}")


def _check_name(name: Any, what: str) -> None:
    if not isinstance(name, str) or not name:
        raise InvalidAppend(f"{what} must be a non-empty string, not {name!r}")
    if len(name) > MAX_NAME_LENGTH or not TYPE_NAME.match(name):
        raise InvalidAppend(
            f"{what} {name!r} is not a type name like 'bank.MoneyDeposited' "
            f"(letters, digits, underscores and dots, at most {MAX_NAME_LENGTH} characters)"
        )
    if type(name) is str and len(_VALID_NAMES) < MAX_REMEMBERED_NAMES:
        _VALID_NAMES.add(name)


# Type names already found valid: the same few recur in every append.
_VALID_NAMES: set[str] = set()
MAX_REMEMBERED_NAMES = 10_000
