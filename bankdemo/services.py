"""The bank's commands: keyword-only functions that load, decide and save aggregates."""

from __future__ import annotations

import uuid
from decimal import Decimal

from bankdemo.domain import BankAccount, CurrencyMismatch, Refusal, Transfer
from eventsourcing_app.core.errors import ConcurrencyError
from eventsourcing_app.core.records import StoredEvent
from eventsourcing_app.core.repository import Repository
from eventsourcing_app.domain import AggregateNotFound
from eventsourcing_app.projections import registry
from eventsourcing_app.projections.worker import ProjectionWorker
from eventsourcing_app.wiring import get_event_store, get_repository

Result = tuple[BankAccount, list[StoredEvent]]


class StaleVersion(ConcurrencyError):
    """The caller's expected version (If-Match) is not the account's: nothing was tried."""


def accounts() -> Repository[BankAccount]:
    return get_repository(BankAccount)


def transfers() -> Repository[Transfer]:
    return get_repository(Transfer)


def account_open(*, owner: str, currency: str, overdraft_limit: Decimal | str = "0") -> Result:
    account = BankAccount.open(owner=owner, currency=currency, overdraft_limit=overdraft_limit)
    return account, accounts().save(account)


def _command(account_id: uuid.UUID, expected_version: int | None, action) -> Result:
    """Run `action` on the account: conditionally on its version, or retried on conflicts."""
    repository = accounts()
    if expected_version is None:
        return repository.execute(account_id, action, serialize=True)
    account = repository.load(account_id)
    if account.version != expected_version:
        raise StaleVersion(account_id, expected_version, account.version)
    action(account)
    return account, repository.save(account)


def account_deposit(
    *, account_id: uuid.UUID, amount: Decimal | str, expected_version: int | None = None
) -> Result:
    return _command(account_id, expected_version, lambda a: a.deposit(amount))


def account_withdraw(
    *, account_id: uuid.UUID, amount: Decimal | str, expected_version: int | None = None
) -> Result:
    return _command(account_id, expected_version, lambda a: a.withdraw(amount))


def account_close(*, account_id: uuid.UUID, expected_version: int | None = None) -> Result:
    return _command(account_id, expected_version, lambda a: a.close())


def transfer_request(
    *, source_id: uuid.UUID, destination_id: uuid.UUID, amount: Decimal | str
) -> tuple[Transfer, list[StoredEvent]]:
    """Record a transfer request; the saga moves the money (see `settle_transfers`)."""
    repository = accounts()
    source = repository.load(source_id)
    repository.load(destination_id)  # both must exist: AggregateNotFound otherwise
    transfer = Transfer.request(
        source_id=source_id, destination_id=destination_id, amount=amount, currency=source.currency
    )
    return transfer, transfers().save(transfer)


def move_money(
    account_id: uuid.UUID, how: str, amount: Decimal, currency: str, transfer_id: uuid.UUID
) -> Result:
    """One saga step on one account: withdraw, deposit or refund a transfer's amount."""

    def act(account: BankAccount) -> None:
        if account.currency != currency:
            raise CurrencyMismatch(
                f"account {account.id} keeps {account.currency}, the transfer is in {currency}"
            )
        if how == "withdraw":
            account.withdraw(amount, transfer_id=transfer_id)
        else:
            account.deposit(amount, transfer_id=transfer_id, refund=how == "refund")

    try:
        return accounts().execute(account_id, act, serialize=True)
    except AggregateNotFound as missing:
        raise Refusal(str(missing)) from None


def settle_transfers(max_rounds: int = 20) -> int:
    """Drive the transfer saga and the transfer read model until nothing is left to do.

    The worker does this in production; the demo seed and tests call it to run synchronously.
    """
    worker = ProjectionWorker(
        registry.select(["bank.transfer_saga", "bank.transfers"]),
        get_event_store(),
        owner="settle-transfers",
    )
    total = 0
    for _ in range(max_rounds):
        read = worker.run_once()
        total += read
        if read == 0:
            break
    return total
