"""Check the hash chains of the event log and fail loudly on the first broken event."""

import uuid

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from eventsourcing_app.core.verification import verify_chains
from eventsourcing_app.wiring import get_recorder


class Command(BaseCommand):
    help = (
        "Recompute every event's SHA-256 hash and check each stream's chain. Exits 0 when the "
        "log is intact and 1, naming the first broken event, when a row was altered or removed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--aggregate", type=uuid.UUID, help="check only this aggregate's stream"
        )
        parser.add_argument("--database", default="default", help="database alias to check")
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def handle(self, *args, aggregate=None, database="default", no_progress=False, **options):
        recorder = get_recorder(database)
        total = recorder.count(aggregate)
        with tqdm(total=total, unit="event", desc="verifying", disable=no_progress or None) as bar:
            report = verify_chains(recorder, aggregate_id=aggregate, progress=bar.update)
        summary = (
            f"{report.events_checked} events in {report.streams_checked} streams checked, "
            f"{report.break_count} broken"
        )
        if report.intact:
            self.stdout.write(self.style.SUCCESS(f"{summary}: the log is intact."))
            return
        self.stdout.write(summary + ":")
        for chain_break in report.breaks:
            self.stdout.write(f"  {chain_break}")
        raise CommandError(f"the event log was tampered with; first broken: {report.breaks[0]}")
