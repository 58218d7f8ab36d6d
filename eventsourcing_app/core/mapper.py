"""Turn stored events into domain events: the one place where upcasting happens."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from eventsourcing_app.core import personal
from eventsourcing_app.core.errors import DomainError, UnknownEventType
from eventsourcing_app.core.personal import Cipher
from eventsourcing_app.core.records import ReplayEvent, StoredEvent
from eventsourcing_app.domain.events import DomainEvent, EventRegistry, registry
from eventsourcing_app.domain.upcasting import Upcasters, upcasters


class EventMapper:
    """Decode stored rows with the registered event classes and upcasters."""

    def __init__(
        self,
        events: EventRegistry = registry,
        steps: Upcasters = upcasters,
        cipher: Cipher | None = None,
    ) -> None:
        self.events = events
        self.upcasters = steps
        self._cipher = cipher

    @property
    def identity(self) -> tuple[int, int, int]:
        """Equal for mappers that decode every event alike (same events, upcasters, cipher)."""
        return id(self.events), id(self.upcasters), id(self._cipher)

    @property
    def cipher(self) -> Cipher | None:
        """What opens personal fields: the one given, else the one the app installed."""
        return self._cipher if self._cipher is not None else personal.installed()

    def keys_for(self, events: Iterable[StoredEvent]) -> Mapping[str, Any] | None:
        """Look up the data keys of a batch's personal fields at once, for `to_domain`."""
        cipher = self.cipher
        return None if cipher is None else cipher.keys_for(events)

    def plain_data(
        self, stored: StoredEvent | ReplayEvent, keys: Mapping[str, Any] | None = None
    ) -> dict:
        """Return the event's data with its personal fields opened (or read as erased)."""
        cipher = self.cipher
        if cipher is None or stored.event_type not in cipher.declared:
            return stored.data
        return cipher.open(stored.event_type, stored.data, keys)

    def to_domain(
        self, stored: StoredEvent | ReplayEvent, keys: Mapping[str, Any] | None = None
    ) -> DomainEvent:
        """Return the stored event as its domain event, its personal fields opened, upcast to
        the current schema. `keys` are the batch's data keys (`keys_for`).

        Raise `UnknownEventType` or `EventDecodingError` naming the event and its aggregate.
        """
        try:
            cls = self.events.event_class(stored.event_type)
            data = self.plain_data(stored, keys)
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
            # The same error, its message naming the event (its class may want more than a
            # message to be made anew).
            exc.args = (
                f"{exc} (event v{stored.version} of {stored.aggregate_type} {stored.aggregate_id})",
            )
            raise exc from None

    def payload(
        self, stored: StoredEvent, keys: Mapping[str, Any] | None = None
    ) -> DomainEvent | dict[str, Any]:
        """Return the domain event when its type is registered, else the stored data."""
        if stored.event_type in self.events:
            return self.to_domain(stored, keys)
        return self.plain_data(stored, keys)
