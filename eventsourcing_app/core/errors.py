"""Every error class of the app, in one place; none of them depends on Django."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventsourcing_app.core.records import StoredEvent


class EventStoreError(Exception):
    """Base class of every error the event store raises on purpose."""


class InvalidAppend(EventStoreError, ValueError):
    """Refuse an append whose input is malformed; nothing was written."""


class ConcurrencyError(EventStoreError):
    """Report that a stream was not at the version the writer expected; nothing was written."""

    def __init__(self, aggregate_id: Any, expected: Any, actual: int | None) -> None:
        self.aggregate_id = aggregate_id
        self.expected = expected
        self.actual = actual
        actual_text = "no stream" if actual is None else f"version {actual}"
        super().__init__(
            f"stream {aggregate_id} expected at {expected}, but it is at {actual_text}"
        )


class MissingPredecessor(EventStoreError):
    """Report that the event an append chains onto is not stored; nothing was written.

    The store meets this only when it appended on a remembered stream head that a rolled-back
    transaction never stored; it then reads the stream's real head.
    """

    def __init__(self, aggregate_id: Any, version: int) -> None:
        self.aggregate_id = aggregate_id
        self.version = version
        super().__init__(f"stream {aggregate_id} has no event {version} with the expected hash")


class StreamTypeMismatch(InvalidAppend):
    """Refuse to append events of one aggregate type to a stream of another."""


class DomainError(Exception):
    """Base class of the domain core's errors."""


class UnknownEventType(DomainError):
    """A stored event's type is not registered, or its aggregate has no apply method for it."""


class EventDecodingError(DomainError):
    """Stored event data does not fit its event class (after upcasting)."""


class AggregateNotFound(DomainError, LookupError):
    """No such aggregate, or not at the version or time asked for."""


class RegistrationError(DomainError):
    """An event type, aggregate type or upcaster was declared twice or wrongly."""


class AppendOnlyError(EventStoreError):
    """Refuse a change to a stored event: the log is append-only."""


class HandlerFailed(EventStoreError):
    """A projection's handler raised; carries the event it failed on."""

    def __init__(self, projection: str, event: StoredEvent, error: Exception) -> None:
        self.projection = projection
        self.event = event
        self.error = error
        # What logs say: the error's class, not its text, which may quote the event's data
        # (personal data included); the whole message goes on the checkpoint, which an
        # erasure scrubs.
        self.summary = (
            f"projection {projection} failed on event {event.id} at position {event.position} "
            f"({event.event_type} v{event.version} of {event.aggregate_id}): "
            f"{type(error).__name__}"
        )
        super().__init__(f"{self.summary}: {error}")


class OwnershipLost(EventStoreError):
    """Another follower took the checkpoint over."""


class BatchFailed(EventStoreError):
    """A follower's batch failed; the checkpoint records the event and the error, and stays."""


class DeliveryFailed(EventStoreError):
    """The broker did not confirm every message of a batch; the checkpoint stays."""
