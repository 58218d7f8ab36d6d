"""Run the demo's downstream consumer: statement notifications from the Kafka topic."""

import signal
import threading

from django.core.management.base import BaseCommand

from bankdemo.consumers import consume
from eventsourcing_app import conf


class Command(BaseCommand):
    help = "Consume the bank's topic and record a statement notification per movement, once."

    def add_arguments(self, parser):
        parser.add_argument("--bootstrap", default=None, help="HOST:PORT of the brokers")
        parser.add_argument("--group", default="bank-statements", help="consumer group")

    def handle(self, *args, bootstrap, group, **options):
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        config = {
            "bootstrap.servers": bootstrap or conf.get("KAFKA_BOOTSTRAP_SERVERS"),
            "group.id": group,
            "session.timeout.ms": 6000,
        }
        self.stdout.write(f"consuming {conf.get('KAFKA_TOPIC')}; Ctrl-C stops")
        consume(config, conf.get("KAFKA_TOPIC"), stop)
