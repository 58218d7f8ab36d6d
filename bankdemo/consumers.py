"""A downstream consumer of the bank's Kafka topic: statement notifications per account.

At-least-once delivery means duplicates: the notification is keyed by the event id, so a
message delivered twice is recorded once. Offsets are committed after the database write.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading

from confluent_kafka import Consumer

from bankdemo.models import StatementNotification

logger = logging.getLogger("eventsourcing.consumers")
MOVEMENTS = {"bank.money-deposited": "deposit", "bank.money-withdrawn": "withdrawal"}


def record_statements(envelopes: list[dict]) -> int:
    """Record the movements among `envelopes`; return how many were new."""
    rows = [
        StatementNotification(
            event_id=envelope["event_id"],
            account_id=envelope["aggregate_id"],
            kind=MOVEMENTS[envelope["event_type"]],
            amount=envelope["data"]["amount"],
            currency=envelope["data"]["currency"],
            happened_at=dt.datetime.fromisoformat(envelope["created_at"]),
        )
        for envelope in envelopes
        if envelope.get("event_type") in MOVEMENTS
    ]
    before = StatementNotification.objects.count()
    StatementNotification.objects.bulk_create(rows, ignore_conflicts=True)
    return StatementNotification.objects.count() - before


def consume(config: dict, topic: str, stop: threading.Event, *, batch: int = 100) -> None:
    """Poll `topic` until `stop` is set, recording statements and then committing offsets."""
    consumer = Consumer({"enable.auto.commit": False, "auto.offset.reset": "earliest", **config})
    consumer.subscribe([topic])
    try:
        while not stop.is_set():
            messages = consumer.consume(batch, timeout=1.0)
            envelopes = []
            for message in messages:
                if message.error():
                    logger.warning("consumer error: %s", message.error())
                    continue
                envelopes.append(json.loads(message.value()))
            if envelopes:
                new = record_statements(envelopes)
                logger.info("recorded %d new statements of %d messages", new, len(envelopes))
            if messages:
                consumer.commit(asynchronous=False)
    finally:
        consumer.close()
