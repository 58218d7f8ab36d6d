"""Run async projections: follow the log from each checkpoint until stopped."""

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from eventsourcing_app.ledger.sealer import NAME as LEDGER
from eventsourcing_app.projections import registry
from eventsourcing_app.projections.worker import ProjectionWorker
from eventsourcing_app.wiring import get_event_store


class Command(BaseCommand):
    help = (
        "Follow the event log and keep async projections and the ledger (a Merkle tree over the "
        "log, sealing signed digests) up to date, in batches that move each checkpoint with the "
        "read model. Wakes on new events (LISTEN/NOTIFY on PostgreSQL, "
        "polling on SQLite); stops cleanly on SIGTERM or SIGINT."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "names",
            nargs="*",
            metavar="NAME",
            help="projections, or 'ledger' (default: all and the ledger)",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="events per batch (PROJECTION_BATCH_SIZE)",
        )
        parser.add_argument(
            "--poll-interval", type=float, default=None, help="seconds (POLL_INTERVAL)"
        )
        parser.add_argument(
            "--once", action="store_true", help="catch up once, then exit (for cron and tests)"
        )
        parser.add_argument("--database", default="default", help="database alias")

    def handle(self, *args, names, batch_size, poll_interval, once, database, **options):
        ledger = not names or LEDGER in names
        others = [name for name in names if name != LEDGER]
        try:
            selected = registry.select(others) if others or not names else []
            projections = [p for p in selected if not p.inline]
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        if not projections and not ledger:
            raise CommandError("no async projections to run (inline ones update with appends)")
        worker = ProjectionWorker(
            projections,
            get_event_store(database),
            using=database,
            batch_size=batch_size,
            poll_interval=poll_interval,
            ledger=ledger,
        )
        if once:
            read = worker.run_once()
            self.stdout.write(f"{read} events read by {', '.join(worker.names)}")
            return
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write(f"running {', '.join(worker.names)} as {worker.owner}; Ctrl-C stops")
        worker.run(stop)
