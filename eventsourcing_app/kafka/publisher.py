"""Relay the event log to Kafka: a sink of the log follower whose checkpoint moves after the
broker confirmed a batch.

Each batch: the events after the checkpoint (in the no-skip order) are produced, the public ones
keyed by aggregate id, and the checkpoint moves once the broker confirmed every one. A crash
re-sends at most the unconfirmed batch; consumers de-duplicate by the envelope's `event_id` (or
aggregate id and version).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import Producer

from eventsourcing_app import conf
from eventsourcing_app.core.errors import DeliveryFailed
from eventsourcing_app.core.mapper import EventMapper
from eventsourcing_app.core.records import Position, StoredEvent
from eventsourcing_app.core.store import EventStore
from eventsourcing_app.following import checkpoints
from eventsourcing_app.following.follower import MAX_BACKOFF, LogFollower
from eventsourcing_app.ledger.digests import FIELDS
from eventsourcing_app.models import LedgerDigest
from eventsourcing_app.privacy.erasure import SUBJECT_FORGOTTEN

DIGEST_FIELDS = (*FIELDS, "signature")
# The relay's place among the ledger digests (a digest row id, not a log position).
DIGEST_CHECKPOINT_PREFIX = "digests:publish:"

logger = logging.getLogger("eventsourcing.publishing")


class EventPublisher:
    """Publish the log's public events to one Kafka topic, from a checkpoint of its own."""

    checkpoint_in_transaction = False
    batch_size = None  # the follower's
    read_log = None  # the store's full events
    logger = logger

    def __init__(
        self,
        store: EventStore,
        producer_config: Mapping[str, Any],
        topic: str,
        *,
        public_names: Mapping[str, str] | None = None,
        using: str = "default",
        batch_size: int | None = None,
        poll_interval: float | None = None,
        delivery_timeout: float | None = None,
        lease: dt.timedelta | None = None,
        owner: str = "publisher",
        digest_topic: str | None = None,
    ) -> None:
        self.topic = topic
        self.digest_topic = digest_topic or conf.get("LEDGER_DIGEST_TOPIC")
        self._digest_checkpoint_ensured = False
        self.using = using
        self.public_names = public_names
        self.delivery_timeout = delivery_timeout or conf.get("KAFKA_DELIVERY_TIMEOUT")
        self.name = f"publish:{topic}"
        self.mapper = EventMapper()
        self.producer_config = {
            "enable.idempotence": True,
            "acks": "all",
            "message.timeout.ms": int(self.delivery_timeout * 1000),
            **producer_config,
        }
        self.producer = Producer(self.producer_config)
        self.follower = LogFollower(
            [self],
            store,
            using=using,
            owner=owner,
            batch_size=batch_size,
            poll_interval=poll_interval,
            lease=lease,
        )

    def public_name(self, event_type: str) -> str | None:
        """The name the event leaves under, or None for a private one. The erasure notice
        (`SubjectForgotten`) always leaves: consumers must delete their copies."""
        if self.public_names is None:
            return event_type
        if event_type == SUBJECT_FORGOTTEN:
            return self.public_names.get(event_type, event_type)
        return self.public_names.get(event_type)

    def envelope(self, event: StoredEvent, name: str, keys: Mapping | None = None) -> bytes:
        """The message value: what a consumer needs, in the event's current schema, its
        personal fields opened (or erased); `keys` are the batch's data keys."""
        data, schema_version = self.mapper.plain_data(event, keys), event.schema_version
        if event.event_type in self.mapper.events:
            domain_event = self.mapper.to_domain(event, keys)
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

    def handle(self, events: Sequence[StoredEvent]) -> None:
        """Produce the batch's public events and wait until the broker confirmed every one."""
        failures: list[str] = []

        def confirmed(error, message) -> None:
            if error is not None:
                failures.append(str(error))

        public = [(event, name) for event in events
                  if (name := self.public_name(event.event_type)) is not None]  # fmt: skip
        keys = self.mapper.keys_for(event for event, _ in public)  # one look-up for the batch
        for event, name in public:
            headers = [("event_type", name.encode())]
            if event.metadata.get("correlation_id"):
                headers.append(("correlation_id", str(event.metadata["correlation_id"]).encode()))
            self._produce(str(event.aggregate_id).encode(), self.envelope(event, name, keys),
                          headers, confirmed)  # fmt: skip
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

    def delivered(self, events: Sequence[StoredEvent], milliseconds: float) -> None:
        logger.info("relayed %d events to %s up to %s (%d published, the rest private)",
                    len(events), self.topic, events[-1].position, self._public(events))  # fmt: skip

    def _public(self, events: Sequence[StoredEvent]) -> int:
        return sum(1 for event in events if self.public_name(event.event_type) is not None)

    def _produce(self, key: bytes, value: bytes, headers, callback, topic=None) -> None:
        while True:
            try:
                self.producer.produce(topic or self.topic, key=key, value=value, headers=headers,
                                      on_delivery=callback)  # fmt: skip
                return
            except BufferError:
                self.producer.poll(0.5)  # the local queue is full: let deliveries drain

    def retry_delay(self, failures: int) -> float:
        """Back off while the broker is away: 1, 2, 4 ... seconds, at most MAX_BACKOFF."""
        return min(2.0 ** max(failures - 1, 0), MAX_BACKOFF)

    def caught_up(self) -> None:
        """Relay the ledger digests sealed since the last ones relayed."""
        self.publish_digests()

    def publish_digests(self) -> int:
        """Produce new ledger digests on the digest topic; return how many the broker confirmed.

        A digest's checkpoint (its row id) moves only after the broker confirmed it; a failure
        is logged and retried when the relay is next caught up.
        """
        name = f"{DIGEST_CHECKPOINT_PREFIX}{self.digest_topic}"
        if not self._digest_checkpoint_ensured:
            checkpoints.ensure([name], self.using)
            self._digest_checkpoint_ensured = True
        after = checkpoints.position(name, self.using).id
        rows = list(
            LedgerDigest.objects.using(self.using).filter(id__gt=after).order_by("id")[:100]
        )
        if not rows:
            return 0
        failures: list[str] = []

        def confirmed(error, message) -> None:
            if error is not None:
                failures.append(str(error))

        for row in rows:
            document = {field: getattr(row, field) for field in DIGEST_FIELDS}
            value = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
            self._produce(str(row.tree_size).encode(), value, [], confirmed,
                          topic=self.digest_topic)  # fmt: skip
        unconfirmed = self.producer.flush(self.delivery_timeout)
        if unconfirmed or failures:
            logger.warning("ledger digests not confirmed by the broker, retrying later: %s",
                           failures[0] if failures else f"{unconfirmed} unconfirmed")  # fmt: skip
            return 0
        checkpoints.advance(name, Position(0, rows[-1].id), self.using)
        logger.info("relayed %d ledger digests to %s", len(rows), self.digest_topic)
        return len(rows)

    def close(self) -> None:
        self.producer.flush(self.delivery_timeout)

    def publish_batch(self) -> int:
        """Publish the next batch; return how many events it covered (0: caught up).

        Raise `BatchFailed` when the broker did not confirm it (the checkpoint stays).
        """
        return self.follower.follow_batch(self)

    def run(self, stop: threading.Event) -> None:
        """Relay until `stop` is set; back off while the broker (or database) is away."""
        logger.info("publishing %s as %s", self.topic, self.follower.owner)
        self.follower.run(stop)

    def run_until_caught_up(self, deadline: float = 60.0) -> int:
        """Publish until nothing is left (for tests and one-off runs); return events covered."""
        total, until = 0, time.monotonic() + deadline
        while time.monotonic() < until:
            published = self.publish_batch()
            total += published
            if published == 0:
                break
        self.publish_digests()
        return total
