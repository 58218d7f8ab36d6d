"""Domain events: frozen dataclasses registered under a stable type name and schema version.

The stored name (`"bank.MoneyDeposited"`) is never a Python import path, so classes can be
renamed or moved without breaking old events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeVar

from eventsourcing_app.core.errors import RegistrationError, UnknownEventType
from eventsourcing_app.core.personal import PersonalFields, declarations
from eventsourcing_app.domain.codec import Codec

E = TypeVar("E", bound="DomainEvent")


class DomainEvent:
    """Base of every domain event; subclasses are frozen dataclasses decorated `@event_type`."""

    __slots__ = ()

    type_name: ClassVar[str]
    schema_version: ClassVar[int]


class EventRegistry:
    """Map stable type names to event classes and their codecs; a container of type names."""

    def __init__(self) -> None:
        self._classes: dict[str, type[DomainEvent]] = {}
        self._codecs: dict[type[DomainEvent], Codec] = {}

    def register(self, cls: type[E], name: str, version: int) -> type[E]:
        if not (dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen):
            raise RegistrationError(f"event {name!r} must be a frozen dataclass")
        if not issubclass(cls, DomainEvent):
            raise RegistrationError(f"event {name!r} must subclass DomainEvent")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise RegistrationError(f"event {name!r} needs a schema version of 1 or more")
        existing = self._classes.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise RegistrationError(
                f"event type {name!r} is already registered to {existing.__qualname__}"
            )
        cls.type_name = name
        cls.schema_version = version
        self._classes[name] = cls
        self._codecs[cls] = Codec.for_dataclass(cls)
        return cls

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def event_class(self, name: str) -> type[DomainEvent]:
        try:
            return self._classes[name]
        except KeyError:
            raise UnknownEventType(f"no event class is registered as {name!r}") from None

    def encode(self, event: DomainEvent) -> dict[str, Any]:
        """Return the event's data as plain JSON values."""
        return self._codecs[type(event)].encode(event)

    def decode(self, name: str, data: dict[str, Any]) -> DomainEvent:
        """Return the event of type `name` from data already upcast to its schema version."""
        cls = self.event_class(name)
        return self._codecs[cls].decode(data, what=name)


registry = EventRegistry()


def event_type(
    name: str, *, version: int = 1, personal: PersonalFields | None = None
) -> Callable[[type[E]], type[E]]:
    """Register a frozen dataclass as the event type `name` at schema `version`.

    `personal` (`personal_data("owner")`) names the fields that are personal data and whose:
    the store seals them under the data subject's key, and erasure makes them unreadable.
    """

    def register(cls: type[E]) -> type[E]:
        if personal is not None:
            unknown = set(personal.fields) - {f.name for f in dataclasses.fields(cls)}
            if unknown:
                raise RegistrationError(f"event {name!r} has no field {sorted(unknown)[0]!r}")
            declarations.declare(name, personal)
        return registry.register(cls, name, version)

    return register
