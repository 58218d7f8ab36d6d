"""Demo history for the bank: staff users, accounts with months of movements, transfers."""

from __future__ import annotations

import datetime as dt
import random
import secrets
from collections.abc import Callable
from decimal import Decimal

from django.contrib.auth.models import Group, User
from django.utils import timezone

from bankdemo import services
from bankdemo.domain import BankAccount
from bankdemo.staff import PRIVACY_OFFICERS
from eventsourcing_app.core.context import metadata_context
from eventsourcing_app.core.records import NewEvent
from eventsourcing_app.projections import registry
from eventsourcing_app.projections.worker import ProjectionWorker
from eventsourcing_app.wiring import get_event_store

OWNERS = [
    "Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson", "Edsger Dijkstra",
    "Barbara Liskov", "Donald Knuth", "Margaret Hamilton", "John Backus", "Frances Allen",
]  # fmt: skip
CURRENCIES = ["EUR"] * 6 + ["USD", "GBP", "CHF", "JPY"]
# Deposits older than this were written by the v1 and v2 code: they stay stored that way.
SCHEMA_V2_FROM, SCHEMA_V3_FROM = 150, 90  # days ago


DEMO_USERS = (
    ("teller", "tellers", False),
    ("auditor", "auditors", False),
    ("privacy", PRIVACY_OFFICERS, False),
    ("admin", None, True),
)


def seed_users(debug: bool) -> dict[str, str | None]:
    """Create the demo users that do not exist yet; keep the others as they are (password,
    roles and sessions). Return, when debugging, each user's new password, or None for a user
    that was kept; else {}."""
    passwords: dict[str, str | None] = {}
    for username, group, superuser in DEMO_USERS:
        if User.objects.filter(username=username).exists():
            passwords[username] = None
            continue
        password = secrets.token_urlsafe(9)
        user = User.objects.create_user(
            username,
            password=password,
            is_staff=superuser or group in ("auditors", PRIVACY_OFFICERS),
            is_superuser=superuser,
        )
        if group:
            user.groups.add(Group.objects.get_or_create(name=group)[0])
        passwords[username] = password
    return passwords if debug else {}


def seed_history(
    *,
    accounts: int,
    events: int,
    days: int = 180,
    seed: int = 2026,
    progress: Callable[[int], None],
) -> int:
    """Open `accounts` accounts months ago and spread about `events` movements up to now."""
    rng = random.Random(seed)
    store = get_event_store()
    repository = services.accounts()
    now = timezone.now()
    start = now - dt.timedelta(days=days)
    opened: list[BankAccount] = []
    with metadata_context(user_id="seed_bank", correlation_id="seed-bank"):
        for number in range(accounts):
            account = BankAccount.open(
                owner=f"{OWNERS[number % len(OWNERS)]} {number // len(OWNERS) + 1}",
                currency=rng.choice(CURRENCIES),
                overdraft_limit=rng.choice(["0", "0", "100"]),
            )
            repository.save(account, imported_at=start + dt.timedelta(minutes=number))
            opened.append(account)
        progress(accounts)
        moments = sorted(
            start + dt.timedelta(seconds=rng.uniform(3600, days * 86400)) for _ in range(events)
        )
        written = accounts
        for moment in moments:
            if moment >= now:
                continue
            account = rng.choice(opened)
            written += _movement(rng, store, repository, account, moment, now)
            progress(1)
    return written


def _movement(rng, store, repository, account: BankAccount, moment, now) -> int:
    places = 0 if account.currency == "JPY" else 2
    scale = 100 if account.currency == "JPY" else 1
    amount = (Decimal(rng.randint(100, 90000)) / 100 * scale).quantize(Decimal(1).scaleb(-places))
    age = (now - moment).days
    if rng.random() < 0.35 and account.balance - amount >= -account.overdraft_limit:
        account.withdraw(amount)
    elif age >= SCHEMA_V3_FROM and account.currency == "EUR":
        # Stored as the old code stored it; reading upcasts it to v3.
        version = 1 if age >= SCHEMA_V2_FROM else 2
        data = {"sum": str(amount)} if version == 1 else {"sum": str(amount), "currency": "EUR"}
        store.append(
            account.id,
            [NewEvent("bank.MoneyDeposited", data, schema_version=version)],
            expected_version=account.version,
            aggregate_type=account.type_name,
            imported_at=moment,
        )
        account.apply(
            repository.to_domain(
                store.read_stream(account.id, after_version=account.version).__next__()
            )
        )
        account.mark_saved()
        return 1
    else:
        account.deposit(amount)
    repository.save(account, imported_at=moment)
    return 1


def seed_transfers(count: int, seed: int = 2026) -> int:
    """Request transfers between demo accounts now, and let the saga settle them."""
    from bankdemo.models import AccountBalance

    rng = random.Random(seed)
    rows = list(AccountBalance.objects.filter(status="open").order_by("account_id"))
    requested = 0
    for number in range(count):
        source, destination = rng.sample(rows, 2)
        with metadata_context(user_id="seed_bank", correlation_id=f"seed-transfer-{number}"):
            services.transfer_request(
                source_id=source.account_id,
                destination_id=destination.account_id,
                amount="25" if source.currency == "JPY" else "25.00",
            )
        requested += 1
    services.settle_transfers()
    return requested


def catch_up_projections() -> int:
    """Bring the async read models and the ledger up to date once (the worker keeps them so
    afterwards); the ledger seals its first digest when a signing key is configured."""
    async_projections = [p for p in registry.select() if not p.inline and p.replayable]
    worker = ProjectionWorker(async_projections, get_event_store(), owner="seed-bank", ledger=True)
    return worker.run_once()
