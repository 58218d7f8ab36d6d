"""Errors of the domain core."""

from __future__ import annotations


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
