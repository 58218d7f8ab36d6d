"""Fill the log with the bank demo's own events, so rebuilds and admin pages have real work.

`ACCOUNTS` accounts (ids fixed by their number) are opened with `BankAccount.open`, then
deposited to and withdrawn from through the account's own commands and saved through the
project's `Repository`, up to `CALL_EVENTS` events a call: the rows, hash chains included, are
what the bank writes. The accounts take turns, so the log interleaves them as a real one
would. Events are stamped as history (`imported_at`), `SECONDS_APART` seconds apart from
`EPOCH` on, so the daily totals span many days.

Two things make a fill several times faster and change nothing in the log: the inline read
models are not updated on the way (`rebuild_projections` builds them from the log; `tidy_up`
empties them), and the fill's own connection commits without waiting for the disk
(`synchronous_commit = off`; the server still writes every commit in order). A million events
then take a minute and a half to four minutes, depending on what else the machine runs.

A fill counts the log and adds only what is missing; each account continues from its stored
head.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from django.db import connection

from bankdemo.domain import MINOR_UNITS, BankAccount
from bankdemo.seeding import CURRENCIES, OWNERS
from eventsourcing_app.core.context import metadata_context
from eventsourcing_app.core.repository import Repository
from eventsourcing_app.domain import AggregateNotFound
from eventsourcing_app.models import Event, ProjectionCheckpoint
from eventsourcing_app.projections import apply_inline, registry
from eventsourcing_app.signals import events_appended
from eventsourcing_app.wiring import get_event_store

ACCOUNTS = 1000
CALL_EVENTS = 100  # events per save: one append, one transaction
ACCOUNT_NAMESPACE = uuid.UUID("6f1c2a1e-3d4b-4c5a-9e7f-b3e1d2c4a5f6")
EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
SECONDS_APART = 30
WITHDRAW_SHARE = 0.3
PROGRESS_EVERY = 100_000
INLINE_PROJECTIONS = "eventsourcing-inline-projections"  # the receiver's dispatch_uid (apps.py)


def account_id(number: int) -> uuid.UUID:
    return uuid.uuid5(ACCOUNT_NAMESPACE, f"bench-account-{number}")


def fill_bank_log(total: int) -> None:
    """Append bank events until the log holds at least `total` events."""
    store = get_event_store()
    have = store.recorder.count()
    if have >= total:
        return
    began = time.perf_counter()
    progress(f"fill: {have:,} -> {total:,} bank events")
    repository = Repository(BankAccount, store)  # no snapshots: the fill leaves only events
    rng = random.Random(have)
    accounts = [_account(repository, number) for number in range(ACCOUNTS)]
    share = min(CALL_EVENTS, math.ceil((total - have) / ACCOUNTS))
    reported = have // PROGRESS_EVERY
    with _fast_appends(), metadata_context(user_id="bench-fill"):
        while have < total:
            for account in accounts:
                events = min(share, total - have)
                if events <= 0:
                    break
                _grow(account, events, rng)
                moment = EPOCH + dt.timedelta(seconds=have * SECONDS_APART)
                repository.save(account, imported_at=moment)
                have += events
                if have // PROGRESS_EVERY > reported:
                    reported = have // PROGRESS_EVERY
                    progress(f"fill: {have:,}/{total:,} events")
    progress(f"fill: {total:,} events in {time.perf_counter() - began:.0f} s")
    settle()


def settle() -> None:
    """Vacuum and analyse the events table now, as autovacuum would soon after a fill.

    Measurements then start with the planner's statistics up to date and no autovacuum worker
    competing for the machine.
    """
    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {Event._meta.db_table}")
    progress(f"fill: events table vacuumed and analysed in {time.perf_counter() - began:.0f} s")


@contextmanager
def _fast_appends() -> Iterator[None]:
    """Leave the inline read models alone and commit without waiting for the disk."""
    events_appended.disconnect(dispatch_uid=INLINE_PROJECTIONS)
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO DEFAULT")
        events_appended.connect(apply_inline, dispatch_uid=INLINE_PROJECTIONS)


def tidy_up() -> None:
    """Empty every read model and forget the projections' checkpoints (the log goes too)."""
    for projection in registry.select():
        projection.reset("default")
    ProjectionCheckpoint.objects.filter(name__in=registry.names()).delete()


def _account(repository: Repository[BankAccount], number: int) -> BankAccount:
    """Load the account with this number, or open it (pending until its first save)."""
    try:
        return repository.load(account_id(number))
    except AggregateNotFound:
        return BankAccount.open(
            owner=f"{OWNERS[number % len(OWNERS)]} {number // len(OWNERS) + 1}",
            currency=CURRENCIES[number % len(CURRENCIES)],
            overdraft_limit="100" if number % 3 == 0 else "0",
            id=account_id(number),
        )


def _grow(account: BankAccount, events: int, rng: random.Random) -> None:
    """Record `events` movements (fewer when the account still has to be opened)."""
    for _ in range(events - len(account.pending_events)):
        amount = Decimal(rng.randint(100, 90_000)).scaleb(-MINOR_UNITS[account.currency])
        covered = account.balance - amount >= -account.overdraft_limit
        if covered and rng.random() < WITHDRAW_SHARE:
            account.withdraw(amount)
        else:
            account.deposit(amount)


def progress(message: str) -> None:
    """Print a line on stderr, as `bench.rounds.progress` does for the suite."""
    print(f"... {message}", file=sys.stderr, flush=True)
