"""Relay the event log to Kafka: a checkpointed, at-least-once subscriber of the log.

Each batch: read the events after the checkpoint (in the no-skip order), produce the public
ones keyed by aggregate id, wait until the broker confirmed every one, then move the
checkpoint. A crash re-sends at most the unconfirmed batch; consumers de-duplicate by the
envelope's `event_id` (or aggregate id and version).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaException, Producer
from django.db import DatabaseError, connections, transaction

from eventsourcing_app.core.mapper import EventMapper
from eventsourcing_app.core.records import StoredEvent
from eventsourcing_app.core.store import EventStore
from eventsourcing_app.following import checkpoints
from eventsourcing_app.following.follower import LogWaiter, OwnershipLost

logger = logging.getLogger("eventsourcing.publishing")
MAX_BACKOFF = 30.0


class DeliveryFailed(Exception):
    """The broker did not confirm every message of a batch; the checkpoint stays."""


class EventPublisher:
    """Publish the log's public events to one Kafka topic, from a checkpoint of its own."""

    def __init__(
        self,
        store: EventStore,
        producer_config: Mapping[str, Any],
        topic: str,
        *,
        public_names: Mapping[str, str] | None = None,
        using: str = "default",
        batch_size: int = 500,
        poll_interval: float = 5.0,
        delivery_timeout: float = 15.0,
        lease: dt.timedelta = dt.timedelta(seconds=30),
        owner: str = "publisher",
    ) -> None:
        self.store = store
        self.topic = topic
        self.public_names = public_names
        self.using = using
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.delivery_timeout = delivery_timeout
        self.lease = lease
        self.owner = owner
        self.name = f"publish:{topic}"
        self.mapper = EventMapper()
        self.producer_config = {
            "enable.idempotence": True,
            "acks": "all",
            "message.timeout.ms": int(delivery_timeout * 1000),
            **producer_config,
        }
        self.producer = Producer(self.producer_config)

    def public_name(self, event_type: str) -> str | None:
        if self.public_names is None:
            return event_type
        return self.public_names.get(event_type)

    def envelope(self, event: StoredEvent, name: str) -> bytes:
        """The message value: what a consumer needs, in the event's current schema."""
        data, schema_version = event.data, event.schema_version
        if event.event_type in self.mapper.events:
            domain_event = self.mapper.to_domain(event)
            data = self.mapper.events.encode(domain_event)
            schema_version = type(domain_event).schema_version
        return json.dumps(
            {
                "event_id": event.id,
                "position": str(event.position),
                "aggregate_id": str(event.aggregate_id),
                "aggregate_type": event.aggregate_type,
                "event_type": name,
                "schema_version": schema_version,
                "version": event.version,
                "data": data,
                "metadata": event.metadata,
                "created_at": event.created_at.isoformat(),
            },
            separators=(",", ":"),
        ).encode()

    def publish_batch(self) -> int:
        """Publish the next batch; return how many events it covered (0: caught up)."""
        checkpoints.ensure([self.name], self.using)
        checkpoint = checkpoints.claim(self.name, self.owner, self.lease, self.using)
        if checkpoint is None:
            return 0  # another publisher holds the lease
        events = list(self.store.read_log(checkpoint.position, limit=self.batch_size))
        if not events:
            return 0
        failures: list[str] = []
        sent = 0

        def confirmed(error, message) -> None:
            if error is not None:
                failures.append(str(error))

        for event in events:
            name = self.public_name(event.event_type)
            if name is None:
                continue  # a private event: never leaves the store
            headers = [("event_type", name.encode())]
            if event.metadata.get("correlation_id"):
                headers.append(("correlation_id", str(event.metadata["correlation_id"]).encode()))
            sent += 1
            self._produce(str(event.aggregate_id).encode(), self.envelope(event, name), headers,
                          confirmed)  # fmt: skip
        unconfirmed = self.producer.flush(self.delivery_timeout)
        if unconfirmed or failures:
            # Start over with a new producer: after a broker failure an idempotent producer
            # may be fenced for good, and the whole batch is sent again anyway.
            self.producer.purge(in_queue=True, in_flight=True)
            self.producer.flush(0)
            self.producer = Producer(self.producer_config)
            raise DeliveryFailed(
                f"{unconfirmed} messages unconfirmed, {len(failures)} failed"
                + (f": {failures[0]}" if failures else "")
            )
        with transaction.atomic(using=self.using):
            if checkpoints.lock(self.name, self.using).owner != self.owner:
                raise OwnershipLost(f"{self.name} was taken over")
            checkpoints.advance(self.name, events[-1].position, self.using)
        logger.info("relayed %d events to %s up to %s (%d published, the rest private)",
                    len(events), self.topic, events[-1].position, sent)  # fmt: skip
        return len(events)

    def _produce(self, key: bytes, value: bytes, headers, callback) -> None:
        while True:
            try:
                self.producer.produce(self.topic, key=key, value=value, headers=headers,
                                      on_delivery=callback)  # fmt: skip
                return
            except BufferError:
                self.producer.poll(0.5)  # the local queue is full: let deliveries drain

    def run(self, stop: threading.Event) -> None:
        """Relay until `stop` is set; back off while the broker (or database) is away."""
        waiter = LogWaiter(self.using, self.poll_interval)
        backoff = 1.0
        logger.info("publishing %s as %s", self.topic, self.owner)
        try:
            while not stop.is_set():
                try:
                    published = self.publish_batch()
                    backoff = 1.0
                except (DeliveryFailed, KafkaException) as exc:
                    logger.warning("broker unavailable, retrying in %.0f s: %s", backoff, exc)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                except (DatabaseError, OwnershipLost) as exc:
                    logger.warning("cannot publish now, retrying in %.0f s: %s", backoff, exc)
                    connections[self.using].close()
                    stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                if published < self.batch_size:
                    waiter.wait(stop)
        finally:
            self.producer.flush(self.delivery_timeout)
            with contextlib.suppress(DatabaseError):
                checkpoints.release(self.name, self.owner, self.using)
            waiter.close()
            connections[self.using].close()
            logger.info("publisher for %s stopped", self.topic)

    def run_until_caught_up(self, deadline: float = 60.0) -> int:
        """Publish until nothing is left (for tests and one-off runs); return events covered."""
        total, until = 0, time.monotonic() + deadline
        while time.monotonic() < until:
            published = self.publish_batch()
            total += published
            if published == 0:
                return total
        return total
