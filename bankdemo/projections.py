"""The bank's read models, built from its events."""

from __future__ import annotations

from decimal import Decimal

from django.db import connections
from django.db.models import OuterRef, Subquery

from bankdemo.domain import (
    AccountClosed,
    AccountOpened,
    MoneyDeposited,
    MoneyWithdrawn,
    TransferCompleted,
    TransferDebited,
    TransferFailed,
    TransferRequested,
)
from bankdemo.models import AccountBalance, DailyTotal, LedgerEntry, TransferStatus
from eventsourcing_app.core.personal import declarations
from eventsourcing_app.domain.erasure import SubjectForgotten
from eventsourcing_app.projections import Projection, handles, projection

LATEST_PER_QUERY = 100  # accounts per UNION query on PostgreSQL


def update_row(batch, model, event, change) -> None:
    """Change the aggregate's row and stamp it with the event's version and time."""
    row = batch.get(model, event.aggregate_id)
    if row is None:
        return  # an event of an aggregate whose first event this model never saw
    change(row)
    row.version = event.version
    row.updated_at = event.created_at
    batch.put(row)


@projection
class AccountBalances(Projection):
    name = "bank.account_balances"
    tables = (AccountBalance,)
    inline = True
    personal_fields = frozenset({"owner"})

    def prefetch(self, events, batch):
        batch.prefetch(AccountBalance, {event.aggregate_id for event in events})

    def _update(self, event, batch, change) -> None:
        update_row(batch, AccountBalance, event, change)

    @handles(AccountOpened)
    def opened(self, event, batch):
        opened = event.payload
        batch.put(
            AccountBalance(
                account_id=event.aggregate_id,
                owner=opened.owner,
                currency=opened.currency,
                overdraft_limit=opened.overdraft_limit,
                version=event.version,
                opened_at=event.created_at,
                updated_at=event.created_at,
            )
        )

    @handles(MoneyDeposited)
    def deposited(self, event, batch):
        def add(row):
            row.balance += event.payload.amount

        self._update(event, batch, add)

    @handles(SubjectForgotten)
    def forgotten(self, event, batch):
        """The owner's name goes; the balance and the rest of the row stay."""
        erased = declarations.get(AccountOpened.type_name).erased

        def erase(row):
            row.owner = erased

        self._update(event, batch, erase)

    @handles(MoneyWithdrawn)
    def withdrawn(self, event, batch):
        def subtract(row):
            row.balance -= event.payload.amount

        self._update(event, batch, subtract)

    @handles(AccountClosed)
    def closed(self, event, batch):
        def close(row):
            row.status = "closed"

        self._update(event, batch, close)


@projection
class LedgerEntries(Projection):
    name = "bank.ledger_entries"
    tables = (LedgerEntry,)
    inline = True

    def prefetch(self, events, batch):
        accounts = list({event.aggregate_id for event in events})
        ledger = LedgerEntry.objects.using(batch.using)
        if connections[batch.using].vendor != "postgresql":
            # SQLite refuses LIMIT inside a UNION: one query over the accounts' entries.
            latest = LedgerEntry.objects.filter(account_id=OuterRef("account_id"))
            rows = ledger.filter(
                account_id__in=accounts,
                version=Subquery(latest.order_by("-version").values("version")[:1]),
            ).values_list("account_id", "balance_after")
            batch.scratch["balances"] = dict(rows)
            return
        # Each account's last entry by one index descent: a query that looks at all of an
        # account's entries costs more with every movement (and runs on every inline append).
        balances = {}
        for start in range(0, len(accounts), LATEST_PER_QUERY):
            latest = [
                ledger.filter(account_id=account)
                .order_by("-version")
                .values_list("account_id", "balance_after")[:1]
                for account in accounts[start : start + LATEST_PER_QUERY]
            ]
            balances.update(latest[0].union(*latest[1:], all=True))
        batch.scratch["balances"] = balances

    def _entry(self, event, batch, kind: str, signed: Decimal) -> None:
        balances = batch.scratch["balances"]
        balance = balances.get(event.aggregate_id, Decimal(0)) + signed
        balances[event.aggregate_id] = balance
        batch.insert(
            LedgerEntry(
                account_id=event.aggregate_id,
                version=event.version,
                event_id=event.stored.id,
                kind=kind,
                amount=abs(signed),
                balance_after=balance,
                currency=event.payload.currency,
                transfer_id=event.payload.transfer_id,
                created_at=event.created_at,
            )
        )

    @handles(MoneyDeposited)
    def deposited(self, event, batch):
        self._entry(event, batch, "deposit", event.payload.amount)

    @handles(MoneyWithdrawn)
    def withdrawn(self, event, batch):
        self._entry(event, batch, "withdrawal", -event.payload.amount)


@projection
class DailyTotals(Projection):
    name = "bank.daily_totals"
    tables = (DailyTotal,)

    @staticmethod
    def _key(event) -> str:
        return f"{event.created_at.date().isoformat()}:{event.payload.currency}"

    def prefetch(self, events, batch):
        batch.prefetch(DailyTotal, {self._key(event) for event in events})

    def _row(self, event, batch) -> DailyTotal:
        key = self._key(event)
        row = batch.get(DailyTotal, key)
        if row is None:
            row = DailyTotal(key=key, day=event.created_at.date(), currency=event.payload.currency)
        batch.put(row)
        return row

    @handles(MoneyDeposited)
    def deposited(self, event, batch):
        row = self._row(event, batch)
        row.deposits += event.payload.amount
        row.deposit_count += 1

    @handles(MoneyWithdrawn)
    def withdrawn(self, event, batch):
        row = self._row(event, batch)
        row.withdrawals += event.payload.amount
        row.withdrawal_count += 1


@projection
class Transfers(Projection):
    name = "bank.transfers"
    tables = (TransferStatus,)

    def prefetch(self, events, batch):
        batch.prefetch(TransferStatus, {event.aggregate_id for event in events})

    def _update(self, event, batch, **fields) -> None:
        update_row(batch, TransferStatus, event, lambda row: vars(row).update(fields))

    @handles(TransferRequested)
    def requested(self, event, batch):
        requested = event.payload
        batch.put(
            TransferStatus(
                transfer_id=event.aggregate_id,
                source_id=requested.source_id,
                destination_id=requested.destination_id,
                amount=requested.amount,
                currency=requested.currency,
                status="requested",
                version=event.version,
                requested_at=event.created_at,
                updated_at=event.created_at,
            )
        )

    @handles(TransferDebited)
    def debited(self, event, batch):
        self._update(event, batch, status="debited")

    @handles(TransferCompleted)
    def completed(self, event, batch):
        self._update(event, batch, status="completed")

    @handles(TransferFailed)
    def failed(self, event, batch):
        failed = event.payload
        self._update(
            event,
            batch,
            status="failed",
            failure_code=failed.code,
            failure_reason=failed.reason,
            refunded=failed.refunded,
        )


# The transfer saga runs in the projection worker too.
from bankdemo import saga  # noqa: E402, F401
