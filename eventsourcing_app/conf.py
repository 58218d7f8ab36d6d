"""App settings, read from the `EVENTSOURCING` dict in Django settings, with their defaults."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Events read per query when a reader streams a stream or the global log.
    "READ_BATCH_SIZE": 1000,
    # Rows per multi-row INSERT when one append carries many events (all in one transaction).
    "INSERT_BATCH_SIZE": 500,
    # Let PostgreSQL prepare the store's statements once per connection. Turn off behind a
    # transaction-mode pooler that cannot keep prepared statements (PgBouncer before 1.21).
    "PREPARE_STATEMENTS": True,
    # Stream heads remembered per process, so that an append after a load skips a read.
    "STREAM_HEAD_CACHE_SIZE": 10000,
    # How often an append with expected version ANY retries after losing a race.
    "ANY_VERSION_RETRIES": 5,
    # Take a snapshot every N events per aggregate: a class's `snapshot_interval` overrides
    # this default, and SNAPSHOT_INTERVALS ({"bank.Account": 50}) overrides both. 0: never.
    "SNAPSHOT_INTERVAL": 100,
    "SNAPSHOT_INTERVALS": {},
    # Projection workers: events per batch (one transaction each), how long to sleep when no
    # NOTIFY arrives (SQLite has none), how long a worker's lease on a projection (and a
    # publisher's on its topic) lasts without a heartbeat, and when a failed projection is
    # tried again.
    "PROJECTION_BATCH_SIZE": 500,
    "POLL_INTERVAL": None,  # seconds; None: 5 on PostgreSQL (NOTIFY wakes sooner), 0.5 on SQLite
    "LEASE_SECONDS": 30,
    "RETRY_FAILED_SECONDS": 60,
    # The Kafka relay (publish_events): the topic, the stored event types it publishes and
    # under which public name (None: every type under its own name), producer overrides.
    "KAFKA_TOPIC": "events",
    "PUBLIC_EVENT_TYPES": None,
    "KAFKA_PRODUCER": {},
}


def get(name: str) -> Any:
    """Return the app setting `name`, from `settings.EVENTSOURCING` or its default."""
    if name not in DEFAULTS:
        raise KeyError(f"unknown EVENTSOURCING setting {name!r}")
    return getattr(settings, "EVENTSOURCING", {}).get(name, DEFAULTS[name])
