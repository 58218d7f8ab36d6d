"""Append a little demo history so a fresh site has something to show."""

import uuid

from django.core.management.base import BaseCommand

from eventsourcing_app.context import metadata_context
from eventsourcing_app.default_store import get_event_store
from eventsourcing_app.records import NO_STREAM, NewEvent

# Fixed ids make the command idempotent: a second run finds the streams and appends nothing.
DEMO_ACCOUNTS = {
    uuid.UUID("5e1d0a1c-0000-4000-8000-000000000001"): ("Ada Lovelace", ["250.00", "-40.00"]),
    uuid.UUID("5e1d0a1c-0000-4000-8000-000000000002"): ("Grace Hopper", ["1200.00", "-99.95"]),
}


class Command(BaseCommand):
    help = "Append demo account histories (once; later runs change nothing)."

    def handle(self, *args, **options):
        store = get_event_store()
        created = 0
        with metadata_context(user_id="seed_demo", correlation_id="demo-seed"):
            for account_id, (owner, movements) in DEMO_ACCOUNTS.items():
                if store.stream_version(account_id) is not None:
                    continue
                events = [NewEvent("bank.AccountOpened", {"owner": owner, "currency": "EUR"})]
                events += [_movement(amount) for amount in movements]
                store.append(
                    account_id, events, expected_version=NO_STREAM, aggregate_type="bank.Account"
                )
                created += 1
        self.stdout.write(f"demo data: {created} account(s) created")


def _movement(amount: str) -> NewEvent:
    if amount.startswith("-"):
        return NewEvent("bank.MoneyWithdrawn", {"amount": amount[1:]})
    return NewEvent("bank.MoneyDeposited", {"amount": amount})
