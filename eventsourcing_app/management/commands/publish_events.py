"""Relay the event log to Kafka, at least once, from a checkpoint of its own."""

import os
import signal
import socket
import threading

from django.core.management.base import BaseCommand, CommandError

from eventsourcing_app import conf
from eventsourcing_app.wiring import get_event_store


class Command(BaseCommand):
    help = (
        "Publish the log's public events to Kafka (idempotent producer, acks=all, key = "
        "aggregate id), moving the checkpoint only after the broker confirmed them. Retries "
        "with backoff while the broker is away; SIGTERM flushes and exits."
    )

    def add_arguments(self, parser):
        parser.add_argument("--topic", default=None, help="topic (default: KAFKA_TOPIC)")
        parser.add_argument("--bootstrap", default=None, help="HOST:PORT of the brokers")
        parser.add_argument(
            "--batch-size", type=int, default=None, help="events per batch (PROJECTION_BATCH_SIZE)"
        )
        parser.add_argument("--once", action="store_true", help="catch up, then exit")
        parser.add_argument("--database", default="default", help="database alias")

    def handle(self, *args, topic, bootstrap, batch_size, once, database, **options):
        try:
            from eventsourcing_app.kafka.publisher import EventPublisher
        except ImportError as missing:
            raise CommandError(
                f"publish_events needs the Kafka client ({missing}): "
                "pip install 'django-event-store[kafka]'"
            ) from None
        bootstrap = bootstrap or conf.get("KAFKA_BOOTSTRAP_SERVERS")
        publisher = EventPublisher(
            get_event_store(database),
            {"bootstrap.servers": bootstrap, **conf.get("KAFKA_PRODUCER")},
            topic or conf.get("KAFKA_TOPIC"),
            public_names=conf.get("PUBLIC_EVENT_TYPES"),
            using=database,
            batch_size=batch_size,
            owner=f"{socket.gethostname()}:{os.getpid()}",
        )
        if once:
            self.stdout.write(f"{publisher.run_until_caught_up()} events relayed")
            return
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write(f"publishing to {publisher.topic} on {bootstrap}; Ctrl-C stops")
        publisher.run(stop)
