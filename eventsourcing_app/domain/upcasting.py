"""Upcasters: pure functions that lift stored event data one schema version at a time.

Stored rows never change. When a row becomes an event, its data passes through the chain
v1 -> v2 -> ... up to the version the event class declares; this is the only place it happens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from eventsourcing_app.core.errors import EventDecodingError, RegistrationError

Upcast = Callable[[dict[str, Any]], dict[str, Any]]


class Upcasters:
    """Upcasters registered per (event type, from_version)."""

    def __init__(self) -> None:
        self._steps: dict[tuple[str, int], Upcast] = {}

    def register(self, event_type: str, from_version: int, function: Upcast) -> Upcast:
        key = (event_type, from_version)
        existing = self._steps.get(key)
        if existing is not None and existing.__qualname__ != function.__qualname__:
            raise RegistrationError(
                f"{event_type} already has an upcaster from v{from_version}: "
                f"{existing.__qualname__}"
            )
        if not isinstance(from_version, int) or from_version < 1:
            raise RegistrationError(f"{event_type}: from_version must be 1 or more")
        self._steps[key] = function
        return function

    def from_versions(self, event_type: str) -> list[int]:
        return sorted(v for name, v in self._steps if name == event_type)

    def event_types(self) -> set[str]:
        return {name for name, _ in self._steps}

    def upcast(
        self, event_type: str, schema_version: int, data: dict[str, Any], target: int
    ) -> dict[str, Any]:
        """Return `data` lifted from `schema_version` to `target`; the input is not changed."""
        if schema_version > target:
            raise EventDecodingError(
                f"{event_type} v{schema_version} is newer than the v{target} this code knows"
            )
        version = schema_version
        while version < target:
            step = self._steps.get((event_type, version))
            if step is None:
                raise EventDecodingError(f"{event_type} has no upcaster from v{version}")
            try:
                data = step(dict(data))
            except Exception as exc:
                raise EventDecodingError(
                    f"{event_type} upcaster from v{version} failed on {data!r}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            version += 1
        return data

    def problems(self, current_versions: Iterable[tuple[str, int]]) -> list[str]:
        """Describe every broken chain: gaps, and upcasters beyond the current version."""
        found = []
        known = dict(current_versions)
        for event_type, current in sorted(known.items()):
            versions = self.from_versions(event_type)
            if not versions:
                continue
            beyond = [v for v in versions if v >= current]
            if beyond:
                found.append(
                    f"{event_type}: upcaster from v{beyond[0]} but the event class is at v{current}"
                )
            missing = [v for v in range(versions[0], current) if v not in versions]
            for version in missing:
                found.append(
                    f"{event_type}: no upcaster from v{version} to v{version + 1} "
                    f"(the chain to v{current} has a gap)"
                )
        for event_type in sorted(self.event_types() - known.keys()):
            found.append(f"{event_type}: upcasters are registered but no event class is")
        return found


upcasters = Upcasters()


def upcaster(event_type: str, *, from_version: int) -> Callable[[Upcast], Upcast]:
    """Register a function that lifts `event_type` data from `from_version` to the next."""

    def register(function: Upcast) -> Upcast:
        return upcasters.register(event_type, from_version, function)

    return register
