"""A Django app that turns PostgreSQL or SQLite into an append-only, tamper-evident event store.

The names below are the public surface. They are imported on first use, so that importing the
Django-free core (`eventsourcing_app.core`, `eventsourcing_app.domain`) never imports Django.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "ANY": "eventsourcing_app.core.records",
    "NO_STREAM": "eventsourcing_app.core.records",
    "START": "eventsourcing_app.core.records",
    "NewEvent": "eventsourcing_app.core.records",
    "Position": "eventsourcing_app.core.records",
    "StoredEvent": "eventsourcing_app.core.records",
    "ConcurrencyError": "eventsourcing_app.core.errors",
    "EventStoreError": "eventsourcing_app.core.errors",
    "InvalidAppend": "eventsourcing_app.core.errors",
    "AggregateNotFound": "eventsourcing_app.core.errors",
    "EventStore": "eventsourcing_app.core.store",
    "Repository": "eventsourcing_app.core.repository",
    "metadata_context": "eventsourcing_app.core.context",
    "Aggregate": "eventsourcing_app.domain",
    "DomainEvent": "eventsourcing_app.domain",
    "applies": "eventsourcing_app.domain",
    "event_type": "eventsourcing_app.domain",
    "upcaster": "eventsourcing_app.domain",
    "get_event_store": "eventsourcing_app.wiring",
    "get_repository": "eventsourcing_app.wiring",
}

__all__ = ["__version__", *sorted(_PUBLIC)]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'eventsourcing_app' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
