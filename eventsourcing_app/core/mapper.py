"""Turn stored events into domain events: the one place where upcasting happens."""

from __future__ import annotations

from typing import Any

from eventsourcing_app.core.errors import DomainError, UnknownEventType
from eventsourcing_app.core.records import StoredEvent
from eventsourcing_app.domain.events import DomainEvent, EventRegistry, registry
from eventsourcing_app.domain.upcasting import Upcasters, upcasters


class EventMapper:
    """Decode stored rows with the registered event classes and upcasters."""

    def __init__(self, events: EventRegistry = registry, steps: Upcasters = upcasters) -> None:
        self.events = events
        self.upcasters = steps

    def to_domain(self, stored: StoredEvent) -> DomainEvent:
        """Return the stored event as its domain event, upcast to the current schema.

        Raise `UnknownEventType` or `EventDecodingError` naming the event and its aggregate.
        """
        try:
            cls = self.events.event_class(stored.event_type)
            data = stored.data
            if stored.schema_version != cls.schema_version:
                data = self.upcasters.upcast(
                    stored.event_type, stored.schema_version, data, cls.schema_version
                )
            return self.events.decode(stored.event_type, data)
        except UnknownEventType:
            raise UnknownEventType(
                f"{stored.event_type!r} is not a registered event type (event v{stored.version} "
                f"of {stored.aggregate_type} {stored.aggregate_id})"
            ) from None
        except DomainError as exc:
            raise type(exc)(
                f"{exc} (event v{stored.version} of {stored.aggregate_type} {stored.aggregate_id})"
            ) from None

    def payload(self, stored: StoredEvent) -> DomainEvent | dict[str, Any]:
        """Return the domain event when its type is registered, else the stored data."""
        if stored.event_type in self.events:
            return self.to_domain(stored)
        return stored.data
