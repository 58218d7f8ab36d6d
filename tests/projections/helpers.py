"""Builders for projection tests: sample account histories and read-model snapshots."""

import random
from decimal import Decimal

from eventsourcing_app.core.repository import Repository
from eventsourcing_app.core.store import EventStore
from eventsourcing_app.wiring import get_event_store
from tests.domain.sample import Account
from tests.projectionapp.models import Balance, DailyCount, Movement, Touch


def accounts_repository(store: EventStore | None = None) -> Repository:
    return Repository(Account, store or get_event_store())


def open_account(owner: str = "Ada", *deposits: str, store: EventStore | None = None) -> Account:
    accounts = accounts_repository(store)
    account = Account.open(owner)
    for amount in deposits:
        account.deposit(Decimal(amount))
    accounts.save(account)
    return account


def generate_history(accounts: int, events: int, seed: int = 7) -> int:
    """Append about `events` events over `accounts` accounts; return how many were appended."""
    rng = random.Random(seed)
    repository = accounts_repository()
    opened = []
    for number in range(accounts):
        account = Account.open(f"owner {number}")
        repository.save(account)
        opened.append(account)
    appended = accounts
    while appended < events:
        account = rng.choice(opened)
        for _ in range(rng.randint(1, 5)):
            amount = Decimal(rng.randint(1, 50000)) / 100
            if rng.random() < 0.3 and amount <= account.balance:
                account.withdraw(amount)
            else:
                account.deposit(amount)
        appended += len(account.pending_events)
        repository.save(account)
    return appended


def read_models() -> dict[str, list[tuple]]:
    """Every read-model row, in a stable order, without wall-clock columns."""
    return {
        "balances": sorted(
            Balance.objects.values_list("account_id", "owner", "balance", "version", "updated_at")
        ),
        "movements": sorted(
            Movement.objects.values_list("event_id", "account_id", "version", "amount")
        ),
        "daily": sorted(DailyCount.objects.values_list("day", "deposits", "withdrawals")),
        "touches": sorted(Touch.objects.values_list("event_id", flat=True)),
    }
