"""Seed the demo bank: users, accounts, months of history, transfers."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from bankdemo import seeding
from bankdemo.models import AccountBalance


class Command(BaseCommand):
    help = (
        "Unless accounts exist already, open accounts with movements spread over past months "
        "(old deposits stored at schema v1 and v2), settle transfers by the saga, and catch the "
        "async read models and the ledger up; then create the demo users teller, auditor and "
        "admin that do not exist yet (existing ones keep their passwords and sessions). When "
        "DEBUG is on, the new users' passwords are printed last."
    )

    def add_arguments(self, parser):
        parser.add_argument("--accounts", type=int, default=20, help="accounts to open")
        parser.add_argument("--events", type=int, default=3000, help="movements to spread")
        parser.add_argument("--transfers", type=int, default=10, help="transfers to request")
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def handle(self, *args, accounts, events, transfers, no_progress, **options):
        if accounts < 2 or events < 0 or transfers < 0:
            raise CommandError("--accounts must be 2 or more; --events and --transfers >= 0")
        self._seed_history(accounts, events, transfers, no_progress)
        # Last, so that the passwords are the final lines, below the projections' log lines.
        passwords = seeding.seed_users(settings.DEBUG)
        for username, password in passwords.items():
            if password is None:
                self.stdout.write(
                    f"user {username}: exists, its password was kept "
                    f"(python manage.py changepassword {username} sets a new one)"
                )
            else:
                self.stdout.write(f"user {username} / password {password}")

    def _seed_history(self, accounts, events, transfers, no_progress) -> None:
        if AccountBalance.objects.exists():
            self.stdout.write("bank history: already seeded")
            return
        with (
            transaction.atomic(),
            tqdm(
                total=accounts + events, unit="event", desc="history", disable=no_progress or None
            ) as bar,
        ):
            written = seeding.seed_history(accounts=accounts, events=events, progress=bar.update)
        requested = seeding.seed_transfers(transfers)
        seeding.catch_up_projections()
        self.stdout.write(
            f"bank history: {accounts} accounts, {written} events, {requested} transfers"
        )
