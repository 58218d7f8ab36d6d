"""Projections of the sample accounts: one inline, three async (one of them fragile)."""

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from eventsourcing_app.projections import Projection, handles, projection
from tests.domain.sample import AccountOpened, MoneyDeposited, MoneyWithdrawn
from tests.projectionapp.models import Balance, DailyCount, Movement, Touch

POISON = Decimal("13.13")
fragile_fixed = False  # the tests "deploy a fix" by setting this


@projection
class Balances(Projection):
    name = "sample.balances"
    tables = (Balance,)
    inline = True

    def prefetch(self, events, batch):
        batch.prefetch(Balance, {event.aggregate_id for event in events})

    def _row(self, event, batch) -> Balance:
        return batch.get(Balance, event.aggregate_id) or Balance(account_id=event.aggregate_id)

    def _save(self, row, event, batch) -> None:
        row.version = event.version
        row.updated_at = event.created_at
        batch.put(row)

    @handles(AccountOpened)
    def opened(self, event, batch):
        row = self._row(event, batch)
        row.owner = event.payload.owner
        self._save(row, event, batch)

    @handles(MoneyDeposited)
    def deposited(self, event, batch):
        row = self._row(event, batch)
        row.balance += event.payload.amount
        self._save(row, event, batch)

    @handles(MoneyWithdrawn)
    def withdrawn(self, event, batch):
        row = self._row(event, batch)
        row.balance -= event.payload.amount
        self._save(row, event, batch)


@projection
class Movements(Projection):
    name = "sample.movements"
    tables = (Movement,)

    @handles(MoneyDeposited)
    def deposited(self, event, batch):
        batch.insert(self._movement(event, event.payload.amount))

    @handles(MoneyWithdrawn)
    def withdrawn(self, event, batch):
        batch.insert(self._movement(event, -event.payload.amount))

    def _movement(self, event, amount):
        return Movement(
            account_id=event.aggregate_id,
            version=event.version,
            amount=amount,
            event_id=event.stored.id,
        )


@projection
class DailyCounts(Projection):
    name = "sample.daily"
    tables = (DailyCount,)
    volatile_fields = ("counted_at",)

    def prefetch(self, events, batch):
        batch.prefetch(DailyCount, {event.created_at.date() for event in events})

    def _count(self, event, batch, field):
        day: dt.date = event.created_at.date()
        row = batch.get(DailyCount, day) or DailyCount(day=day)
        setattr(row, field, getattr(row, field) + 1)
        row.counted_at = timezone.now()
        batch.put(row)

    @handles(MoneyDeposited)
    def deposited(self, event, batch):
        self._count(event, batch, "deposits")

    @handles(MoneyWithdrawn)
    def withdrawn(self, event, batch):
        self._count(event, batch, "withdrawals")


@projection
class Fragile(Projection):
    name = "sample.fragile"
    tables = (Touch,)

    @handles(MoneyDeposited)
    def deposited(self, event, batch):
        batch.put(Touch(event_id=event.stored.id))
        if event.payload.amount == POISON and not fragile_fixed:
            raise ValueError(f"cannot digest {POISON}")
