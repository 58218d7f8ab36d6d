"""Build and wire the app's objects: stores, recorders, repositories, with the app's settings.

The one place where the Django-free core meets the project: the store gets the recorder of
the database it runs on and an after-append hook that sends `events_appended`, so inline
projections run alike on every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from django.db import connections, transaction

from eventsourcing_app import conf
from eventsourcing_app.backends import recorder_class
from eventsourcing_app.backends.snapshots import DjangoSnapshotStore
from eventsourcing_app.core.heads import StreamHeads
from eventsourcing_app.core.personal import Cipher
from eventsourcing_app.core.protocols import Recorder
from eventsourcing_app.core.records import StoredEvent
from eventsourcing_app.core.repository import Repository
from eventsourcing_app.core.store import EventStore
from eventsourcing_app.domain.aggregate import Aggregate
from eventsourcing_app.privacy.keyring import DjangoKeyRing
from eventsourcing_app.signals import events_appended

A = TypeVar("A", bound=Aggregate)

# One memory of stream heads per database, shared by every store of the process.
_heads: dict[str, StreamHeads] = {}


def get_recorder(using: str = "default"):
    """Return the recorder of the Django database `using` (PostgreSQL or SQLite)."""
    return recorder_class(using)(using)


def announcer(using: str):
    """Return the after-append hook that sends `events_appended` for database `using`.

    Inside a Django recorder's append the database transaction is open already. A recorder
    that keeps events elsewhere (in memory) gets one around the receivers, so that what an
    inline projection writes commits whole or not at all, and a receiver that raises
    rolls the append back on every backend.
    """

    def announce(events: Sequence[StoredEvent]) -> None:
        if connections[using].in_atomic_block:
            events_appended.send(sender=EventStore, events=events, using=using)
            return
        with transaction.atomic(using=using):
            events_appended.send(sender=EventStore, events=events, using=using)

    return announce


def get_event_store(using: str = "default", *, recorder: Recorder | None = None) -> EventStore:
    """Return an `EventStore` on the Django database `using` (or on `recorder`), wired to send
    `events_appended` inside every append."""
    if recorder is None:
        recorder = get_recorder(using)
        heads = _heads.get(using)
        if heads is None:
            heads = _heads.setdefault(using, StreamHeads(conf.get("STREAM_HEAD_CACHE_SIZE")))
    else:
        heads = StreamHeads(conf.get("STREAM_HEAD_CACHE_SIZE"))
    return EventStore(
        recorder,
        read_batch_size=conf.get("READ_BATCH_SIZE"),
        any_version_retries=conf.get("ANY_VERSION_RETRIES"),
        heads=heads,
        after_append=announcer(using),
        cipher=Cipher(DjangoKeyRing(using)),
    )


def snapshot_interval(aggregate_class: type[Aggregate]) -> int:
    """Return how many events apart `aggregate_class` is snapshotted (0: never)."""
    per_type = conf.get("SNAPSHOT_INTERVALS")
    if aggregate_class.type_name in per_type:
        return per_type[aggregate_class.type_name]
    if aggregate_class.snapshot_interval is not None:
        return aggregate_class.snapshot_interval
    return conf.get("SNAPSHOT_INTERVAL")


def get_repository(aggregate_class: type[A], using: str = "default") -> Repository[A]:
    """Return a `Repository` for `aggregate_class` on the Django database `using`."""
    return Repository(
        aggregate_class,
        get_event_store(using),
        snapshots=DjangoSnapshotStore(using),
        snapshot_interval=snapshot_interval(aggregate_class),
    )


def log_waiter(using: str, poll_interval: float):
    """Return what log followers on database `using` sleep on until events are appended."""
    return recorder_class(using).log_waiter(using, poll_interval)
