"""Errors the event store raises; none of them depends on Django."""

from __future__ import annotations

from typing import Any


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


class StreamTypeMismatch(InvalidAppend):
    """Refuse to append events of one aggregate type to a stream of another."""
