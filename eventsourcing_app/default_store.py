"""Build the event store the project uses: the Django recorder with the app's settings."""

from __future__ import annotations

from eventsourcing_app import conf
from eventsourcing_app.heads import StreamHeads
from eventsourcing_app.recorders.database import DjangoRecorder
from eventsourcing_app.store import EventStore

# One memory of stream heads per database, shared by every store of the process.
_heads: dict[str, StreamHeads] = {}


def get_event_store(using: str = "default") -> EventStore:
    """Return an `EventStore` on the Django database `using`."""
    heads = _heads.get(using)
    if heads is None:
        heads = _heads.setdefault(using, StreamHeads(conf.get("STREAM_HEAD_CACHE_SIZE")))
    return EventStore(
        DjangoRecorder(using),
        read_batch_size=conf.get("READ_BATCH_SIZE"),
        any_version_retries=conf.get("ANY_VERSION_RETRIES"),
        heads=heads,
    )
