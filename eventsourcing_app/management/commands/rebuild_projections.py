"""Rebuild projections by replaying the whole log, or verify them against a replay."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from eventsourcing_app import conf
from eventsourcing_app.core.records import START
from eventsourcing_app.projections import HandlerFailed, registry
from eventsourcing_app.projections.rebuild import events_to_replay, rebuild_all
from eventsourcing_app.wiring import get_event_store


class Command(BaseCommand):
    help = (
        "Reset the named (default: all) projections and replay the log through their handlers "
        "in one pass and one transaction, reading only the event types they handle: readers "
        "see the old read models until the new ones commit, and a failure leaves them all as "
        "they were. --verify replays into the live tables, "
        "compares with a copy of them and rolls back, exiting 1 when they differ. Each rebuilt "
        "checkpoint's move is recorded with --by (default: the OS user) and --reason."
    )

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", metavar="NAME", help="projections (default: all)")
        parser.add_argument(
            "--batch-size", type=int, default=None, help="events per batch (REBUILD_BATCH_SIZE)"
        )
        parser.add_argument(
            "--verify", action="store_true", help="compare a replay with the live read model"
        )
        parser.add_argument("--database", default="default", help="database alias")
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        parser.add_argument(
            "--by", default=None, help="who asks for the rebuild (default: the OS user)"
        )
        parser.add_argument(
            "--reason", default="", metavar="TEXT", help="why, for the checkpoint change record"
        )

    def handle(
        self, *args, names, batch_size, verify, database, no_progress, by, reason, **options
    ):
        try:
            projections = registry.select(names)
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        acting = [p.name for p in projections if not p.replayable]
        if names and acting:
            raise CommandError(
                f"{', '.join(acting)} acts on events (a saga) and is never replayed; "
                "its checkpoint only moves forward"
            )
        projections = [p for p in projections if p.replayable]
        if batch_size is None:
            batch_size = conf.get("REBUILD_BATCH_SIZE")
        if batch_size < 1:
            raise CommandError("--batch-size must be 1 or more")
        store = get_event_store(database)
        head = store.head()
        if head == START:
            self.stdout.write("the event log is empty: nothing to replay; read models unchanged")
            return
        total = events_to_replay(projections, database)
        drifted = []
        with tqdm(total=total, unit="event", desc="replay", disable=no_progress or None) as bar:
            try:
                reports = rebuild_all(
                    projections,
                    store,
                    using=database,
                    batch_size=batch_size,
                    verify=verify,
                    progress=bar.update,
                    by=by,
                    reason=reason,
                )
            except HandlerFailed as exc:
                others = " (and every read model replayed with it)" if len(projections) > 1 else ""
                raise CommandError(
                    f"{exc}; {exc.projection}{others} was left as it was before the rebuild"
                ) from exc
        for projection, report in zip(projections, reports, strict=True):
            if not verify:
                self.stdout.write(
                    f"{projection.name}: rebuilt from {report.events_read} events "
                    f"up to {report.position}"
                )
            elif report.difference_count:
                drifted.append(projection.name)
                self.stdout.write(
                    f"{projection.name}: {report.difference_count} rows differ from a replay:"
                )
                for difference in report.differences:
                    self.stdout.write(f"  {difference}")
            else:
                self.stdout.write(
                    f"{projection.name}: matches a replay of {report.events_read} events"
                )
        if drifted:
            raise CommandError(f"read models differ from a replay: {', '.join(drifted)}")
