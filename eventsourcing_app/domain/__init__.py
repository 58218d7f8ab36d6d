"""The Django-free domain core: events, aggregates, upcasters and their JSON codec."""

from eventsourcing_app.core.errors import (
    AggregateNotFound,
    DomainError,
    EventDecodingError,
    UnknownEventType,
)
from eventsourcing_app.core.personal import ERASED, personal_data
from eventsourcing_app.domain.aggregate import Aggregate, applies
from eventsourcing_app.domain.events import DomainEvent, event_type, registry
from eventsourcing_app.domain.upcasting import upcaster, upcasters

__all__ = [
    "ERASED",
    "Aggregate",
    "AggregateNotFound",
    "DomainError",
    "DomainEvent",
    "EventDecodingError",
    "UnknownEventType",
    "applies",
    "event_type",
    "personal_data",
    "registry",
    "upcaster",
    "upcasters",
]
