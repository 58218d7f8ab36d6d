"""Re-wrap every data subject's key under the current master key."""

from django.core.management.base import BaseCommand, CommandError

from eventsourcing_app.core.personal import PersonalDataError
from eventsourcing_app.privacy import masterkey
from eventsourcing_app.privacy.keyring import rewrap


class Command(BaseCommand):
    help = (
        "Wrap every live data key under the master key now configured (PERSONAL_DATA_KEY_FILE "
        "or PERSONAL_DATA_KEY), unwrapping with the keys listed in "
        "PERSONAL_DATA_RETIRED_KEY_FILES; in one transaction. Events and destroyed keys are "
        "untouched. docs/privacy.md gives the steps around it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default", help="the Django database alias")

    def handle(self, *args, database, **options):
        try:
            current_id, _ = masterkey.current()
            before = rewrap(database)
        except PersonalDataError as exc:
            raise CommandError(str(exc)) from None
        moved = sum(count for master_id, count in before.items() if master_id != current_id)
        kept = before.get(current_id, 0)
        self.stdout.write(
            f"master key {current_id}: re-wrapped {moved} data key(s)"
            + "".join(
                f", {count} from {master_id}"
                for master_id, count in sorted(before.items())
                if master_id != current_id
            )
            + f"; {kept} already under it. No data key needs a retired master key now: "
            "remove PERSONAL_DATA_RETIRED_KEY_FILES from the settings and destroy those files."
        )
