"""Purge or rebuild aggregate snapshots."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from eventsourcing_app.backends.snapshots import DjangoSnapshotStore
from eventsourcing_app.core.snapshots import count_streams, rebuild_snapshots
from eventsourcing_app.domain.aggregate import aggregate_types
from eventsourcing_app.wiring import get_event_store, snapshot_interval


class Command(BaseCommand):
    help = (
        "Snapshots are a cache: --purge deletes them (loads replay more events, answers stay "
        "the same); --rebuild replaces them with one per stream, replayed from the events."
    )

    def add_arguments(self, parser):
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--rebuild", action="store_true", help="replay and re-snapshot")
        action.add_argument("--purge", action="store_true", help="delete snapshots")
        parser.add_argument(
            "--type", dest="types", action="append", metavar="T", help="aggregate type name"
        )
        parser.add_argument("--database", default="default", help="database alias")
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def handle(self, *args, rebuild, purge, types, database, no_progress, **options):
        known = sorted(aggregate_types)
        unknown = sorted(set(types or ()) - set(known))
        if unknown:
            raise CommandError(
                f"unknown aggregate type {', '.join(unknown)}; known: {', '.join(known) or 'none'}"
            )
        snapshots = DjangoSnapshotStore(database)
        if purge:
            removed = sum(snapshots.purge(name) for name in types) if types else snapshots.purge()
            self.stdout.write(f"{removed} snapshots deleted")
            return
        store = get_event_store(database)
        for name in types or known:
            aggregate_class = aggregate_types[name]
            with tqdm(
                total=count_streams(store, name),
                unit="stream",
                desc=name,
                disable=no_progress or None,
            ) as bar:
                written = rebuild_snapshots(
                    aggregate_class,
                    store,
                    snapshots,
                    snapshot_interval(aggregate_class),
                    progress=bar.update,
                )
            self.stdout.write(f"{name}: {written} snapshots written")
