"""The bank's commands: keyword-only functions that load, decide and save aggregates.

Every command takes an optional `reason` (why, in a person's words), recorded in the metadata
of the events it appends; closing an account requires one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from bankdemo.domain import BankAccount, CurrencyMismatch, Refusal, Transfer
from eventsourcing_app.core.context import REASON, metadata_context
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


class ReasonRequired(Refusal):
    code = "reason_required"


def clean_reason(reason: str | None) -> str | None:
    """The reason as recorded: surrounding whitespace dropped; None when nothing is left."""
    return (reason or "").strip() or None


@contextmanager
def because(reason: str | None) -> Iterator[None]:
    """Record `reason` on the events appended inside the block (none given: the context's)."""
    reason = clean_reason(reason)
    with metadata_context(**({REASON: reason} if reason else {})):
        yield


def accounts() -> Repository[BankAccount]:
    return get_repository(BankAccount)


def transfers() -> Repository[Transfer]:
    return get_repository(Transfer)


def account_open(
    *,
    owner: str,
    currency: str,
    overdraft_limit: Decimal | str = "0",
    reason: str | None = None,
) -> Result:
    account = BankAccount.open(owner=owner, currency=currency, overdraft_limit=overdraft_limit)
    with because(reason):
        return account, accounts().save(account)


def _command(
    account_id: uuid.UUID, expected_version: int | None, action, reason: str | None = None
) -> Result:
    """Run `action` on the account: conditionally on its version, or retried on conflicts."""
    repository = accounts()
    with because(reason):
        if expected_version is None:
            return repository.execute(account_id, action, serialize=True)
        account = repository.load(account_id)
        if account.version != expected_version:
            raise StaleVersion(account_id, expected_version, account.version)
        action(account)
        return account, repository.save(account)


def account_deposit(
    *,
    account_id: uuid.UUID,
    amount: Decimal | str,
    expected_version: int | None = None,
    reason: str | None = None,
) -> Result:
    return _command(account_id, expected_version, lambda a: a.deposit(amount), reason)


def account_withdraw(
    *,
    account_id: uuid.UUID,
    amount: Decimal | str,
    expected_version: int | None = None,
    reason: str | None = None,
) -> Result:
    return _command(account_id, expected_version, lambda a: a.withdraw(amount), reason)


def account_close(
    *, account_id: uuid.UUID, reason: str | None, expected_version: int | None = None
) -> Result:
    """Close the account; why must be said (`reason`), or it is refused (reason_required)."""
    if clean_reason(reason) is None:
        raise ReasonRequired("closing an account needs a reason")
    return _command(account_id, expected_version, lambda a: a.close(), reason)


def transfer_request(
    *,
    source_id: uuid.UUID,
    destination_id: uuid.UUID,
    amount: Decimal | str,
    reason: str | None = None,
) -> tuple[Transfer, list[StoredEvent]]:
    """Record a transfer request; the saga moves the money (see `settle_transfers`), its
    events carrying the request's reason."""
    repository = accounts()
    source = repository.load(source_id)
    repository.load(destination_id)  # both must exist: AggregateNotFound otherwise
    transfer = Transfer.request(
        source_id=source_id, destination_id=destination_id, amount=amount, currency=source.currency
    )
    with because(reason):
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
