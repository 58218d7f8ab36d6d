"""The aggregate base: commands record events, and state changes only in apply methods."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from eventsourcing_app.core.errors import RegistrationError, UnknownEventType
from eventsourcing_app.domain.codec import decode_tagged, encode_tagged
from eventsourcing_app.domain.erasure import SubjectForgotten
from eventsourcing_app.domain.events import DomainEvent

A = TypeVar("A", bound="Aggregate")
Apply = Callable[[Any, Any], None]

aggregate_types: dict[str, type[Aggregate]] = {}


def applies(event_class: type[DomainEvent]) -> Callable[[Apply], Apply]:
    """Mark a method as the one that applies `event_class` to the aggregate's state."""

    def mark(method: Apply) -> Apply:
        method.applies_event = event_class
        return method

    return mark


class Aggregate:
    """Base of event-sourced aggregates.

    Subclasses name their stable type (`class Account(Aggregate, type_name="bank.Account")`),
    validate in command methods and call `self.record(Event(...))`; `@applies(Event)` methods
    change state. `version` counts the events applied, pending ones included.
    """

    type_name: ClassVar[str]
    snapshot_interval: ClassVar[int | None] = None
    snapshot_schema_version: ClassVar[int] = 1
    _appliers: ClassVar[dict[type[DomainEvent], Apply]] = {}

    def __init_subclass__(cls, type_name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        appliers = dict(cls._appliers)
        for value in vars(cls).values():
            event_class = getattr(value, "applies_event", None)
            if event_class is not None:
                appliers[event_class] = value
        cls._appliers = appliers
        if type_name is not None:
            existing = aggregate_types.get(type_name)
            if existing is not None and existing.__qualname__ != cls.__qualname__:
                raise RegistrationError(
                    f"aggregate type {type_name!r} is already {existing.__qualname__}"
                )
            cls.type_name = type_name
            aggregate_types[type_name] = cls

    def __init__(self, id: uuid.UUID) -> None:
        self.id = id
        self.version = 0
        self._pending: list[DomainEvent] = []

    @property
    def pending_events(self) -> list[DomainEvent]:
        return list(self._pending)

    @property
    def original_version(self) -> int:
        """The version as loaded: the expected version when the pending events are saved."""
        return self.version - len(self._pending)

    def record(self, event: DomainEvent) -> None:
        """Apply a new event and keep it for saving."""
        self.apply(event)
        self._pending.append(event)

    def apply(self, event: DomainEvent) -> None:
        """Change state by one event (a new one or one replayed from the store)."""
        method = self._appliers.get(type(event))
        if method is None and isinstance(event, SubjectForgotten):
            self.version += 1  # every stream may record an erasure; the state is the events'
            return
        if method is None:
            raise UnknownEventType(
                f"{type(self).__name__} {self.id} has no apply method for "
                f"{getattr(event, 'type_name', type(event).__name__)} "
                f"(event v{self.version + 1})"
            )
        method(self, event)
        self.version += 1

    def mark_saved(self) -> list[DomainEvent]:
        """Forget the pending events once stored; return them."""
        saved, self._pending = self._pending, []
        return saved

    def snapshot_state(self) -> dict[str, Any]:
        """Return the state to store in a snapshot; override for values JSON cannot tag."""
        state = {k: v for k, v in vars(self).items() if k not in ("id", "version", "_pending")}
        return encode_tagged(state)

    @classmethod
    def from_snapshot(cls: type[A], id: uuid.UUID, version: int, state: dict[str, Any]) -> A:
        """Return the aggregate as `snapshot_state` described it at `version`."""
        aggregate = cls.__new__(cls)
        Aggregate.__init__(aggregate, id)
        vars(aggregate).update(decode_tagged(state))
        aggregate.version = version
        return aggregate
