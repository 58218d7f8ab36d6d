"""App settings, read from the `EVENTSOURCING` dict in Django settings: every default lives here.

Importing this module does not import Django (the Django-free core takes its defaults from
`DEFAULTS`); reading a setting does.
"""

from __future__ import annotations

import os
from typing import Any

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
    # Log followers (projection workers and the Kafka relay): events per batch (one
    # transaction each for a read model), how long to sleep when no NOTIFY arrives (SQLite has
    # none), how long a follower's lease on a checkpoint lasts without a heartbeat, and when a
    # failed projection is tried again.
    "PROJECTION_BATCH_SIZE": 500,
    "POLL_INTERVAL": None,  # seconds; None: 5 on PostgreSQL (NOTIFY wakes sooner), 0.5 otherwise
    "LEASE_SECONDS": 30,
    "RETRY_FAILED_SECONDS": 60,
    # Events per batch of `rebuild_projections` (all batches in one transaction per projection).
    "REBUILD_BATCH_SIZE": 1000,
    # The Kafka relay (publish_events): the brokers (the KAFKA_BOOTSTRAP_SERVERS environment
    # variable wins), the topic, the stored event types it publishes and under which public
    # name (None: every type under its own name), how long a batch may wait for the broker's
    # confirmation, and producer overrides (TLS, SASL).
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    "KAFKA_TOPIC": "events",
    "PUBLIC_EVENT_TYPES": None,
    "KAFKA_DELIVERY_TIMEOUT": 15.0,
    "KAFKA_PRODUCER": {},
    # The ledger (a Merkle tree over the log, RFC 9162): events per sealing batch; how often a
    # signed digest is sealed (after so many new events, or so many seconds after the last one
    # when the tree grew since); where digest files go; the Kafka topic the relay publishes
    # them on; and the Ed25519 signing key, as PEM or base64 text or as a PEM file (the
    # LEDGER_SIGNING_KEY, LEDGER_SIGNING_KEY_FILE and LEDGER_DIGEST_DIR environment variables
    # win). No key: the tree still grows, but no digest is sealed.
    "LEDGER_BATCH_SIZE": 5000,
    "LEDGER_DIGEST_EVERY": {"events": 10000, "seconds": 60},
    "LEDGER_DIGEST_DIR": "ledger-digests",
    "LEDGER_DIGEST_TOPIC": "ledger-digests",
    "LEDGER_SIGNING_KEY": None,
    "LEDGER_SIGNING_KEY_FILE": None,
    # Personal data: the master key that wraps every data subject's key (32 bytes, base64),
    # as text or in a file (the PERSONAL_DATA_KEY and PERSONAL_DATA_KEY_FILE environment
    # variables win); files of earlier master keys still accepted while `rotate_master_key`
    # re-wraps under the current one; how many unwrapped data keys a process keeps; and how
    # long it seals with a subject's key before reading the key's row again (0: every append).
    "PERSONAL_DATA_KEY": None,
    "PERSONAL_DATA_KEY_FILE": None,
    "PERSONAL_DATA_RETIRED_KEY_FILES": [],
    "PERSONAL_DATA_KEY_CACHE": 10_000,
    "PERSONAL_DATA_SEAL_KEY_SECONDS": 30,
}

# Settings the environment overrides, for deployments configured without code.
ENVIRONMENT = {
    name: name
    for name in (
        "KAFKA_BOOTSTRAP_SERVERS",
        "LEDGER_SIGNING_KEY",
        "LEDGER_SIGNING_KEY_FILE",
        "LEDGER_DIGEST_DIR",
        "PERSONAL_DATA_KEY",
        "PERSONAL_DATA_KEY_FILE",
    )
}

POLL_INTERVALS = {"postgresql": 5.0}  # databases that wake followers with a notification
POLL_INTERVAL_WITHOUT_NOTIFY = 0.5


def configured() -> dict[str, Any]:
    """Return the project's `EVENTSOURCING` dict as written (empty when it has none)."""
    from django.conf import settings

    return getattr(settings, "EVENTSOURCING", {})


def get(name: str) -> Any:
    """Return the app setting `name`: the environment's, the project's, or the default."""
    if name not in DEFAULTS:
        raise KeyError(f"unknown EVENTSOURCING setting {name!r}")
    variable = ENVIRONMENT.get(name)
    if variable and os.environ.get(variable):
        return os.environ[variable]
    return configured().get(name, DEFAULTS[name])


def unknown_keys() -> list[str]:
    """Return the keys of `EVENTSOURCING` that are no setting of the app (typos, old names)."""
    return sorted(set(configured()) - DEFAULTS.keys())


def poll_interval(using: str = "default") -> float:
    """Return how long a follower sleeps between polls of database `using`."""
    from django.db import connections

    return get("POLL_INTERVAL") or POLL_INTERVALS.get(
        connections[using].vendor, POLL_INTERVAL_WITHOUT_NOTIFY
    )
