"""The bank domain: accounts and transfers as event-sourced aggregates (no Django here)."""

from __future__ import annotations

import dataclasses
import unicodedata
import uuid
from decimal import Decimal

from eventsourcing_app.domain import (
    Aggregate,
    DomainEvent,
    applies,
    event_type,
    personal_data,
    upcaster,
)

# ISO 4217 minor units of the currencies the bank keeps accounts in.
MINOR_UNITS = {"EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "SEK": 2, "JPY": 0, "KWD": 3}
# What the read models hold (numeric(20,3): below 10^17) bounds the domain, with room to spare:
# an amount and an overdraft stay below 10^15, a balance at or below 10^16 less one minor unit.
# A transfer's refund is the one deposit taken beyond it (money is never left in flight), so a
# balance never passes 10^16 + 10^15.
MAX_AMOUNT_EXPONENT = 14
MAX_BALANCE = {
    currency: Decimal(10**16) - Decimal(1).scaleb(-places)
    for currency, places in MINOR_UNITS.items()
}


class Refusal(Exception):
    """A command the domain refuses; `code` is stable for API clients."""

    code = "refused"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidAmount(Refusal):
    code = "invalid_amount"


class UnknownCurrency(Refusal):
    code = "unknown_currency"


class InsufficientFunds(Refusal):
    code = "insufficient_funds"


class ClosedAccount(Refusal):
    code = "account_closed"


class BalanceNotZero(Refusal):
    code = "balance_not_zero"


class CurrencyMismatch(Refusal):
    code = "currency_mismatch"


class SameAccount(Refusal):
    code = "same_account"


class BalanceLimit(Refusal):
    code = "balance_limit"


def visible(text: str) -> bool:
    """Tell whether `text` shows anything: a name of spaces, zero-width or other format and
    control characters alone is blank."""
    return any(
        not char.isspace() and unicodedata.category(char)[0] not in ("C", "Z") for char in text
    )


def money(amount: Decimal | str, currency: str) -> Decimal:
    """Return `amount` as a positive Decimal in `currency`'s minor units, or refuse."""
    if currency not in MINOR_UNITS:
        raise UnknownCurrency(f"{currency!r} is not a currency this bank keeps")
    try:
        value = Decimal(amount)
    except (ArithmeticError, TypeError, ValueError):
        raise InvalidAmount(f"{amount!r} is not an amount") from None
    if not value.is_finite() or value <= 0:
        raise InvalidAmount("amounts must be positive")
    if value.adjusted() > MAX_AMOUNT_EXPONENT:
        raise InvalidAmount("amounts stop below 10^15")
    places = MINOR_UNITS[currency]
    unit = Decimal(1).scaleb(-places)
    if value != value.quantize(unit):
        raise InvalidAmount(f"{currency} amounts have {places} decimal places at most")
    return value.quantize(unit)


# The owner's name is personal data; its data subject is the account (the stream) today, and
# a customer entity can take over later through the subject's key, without touching events.
@event_type("bank.AccountOpened", personal=personal_data("owner"))
@dataclasses.dataclass(frozen=True)
class AccountOpened(DomainEvent):
    owner: str
    currency: str
    overdraft_limit: Decimal


@event_type("bank.MoneyDeposited", version=3)
@dataclasses.dataclass(frozen=True)
class MoneyDeposited(DomainEvent):
    amount: Decimal
    currency: str
    transfer_id: uuid.UUID | None = None


@upcaster("bank.MoneyDeposited", from_version=1)
def deposit_v1_to_v2(data: dict) -> dict:
    """v1 had no currency: the bank kept euro accounts only until v2."""
    return {**data, "currency": "EUR"}


@upcaster("bank.MoneyDeposited", from_version=2)
def deposit_v2_to_v3(data: dict) -> dict:
    """v3 renamed `sum` to `amount` and added the transfer a deposit belongs to."""
    data["amount"] = data.pop("sum")
    return {**data, "transfer_id": None}


@event_type("bank.MoneyWithdrawn")
@dataclasses.dataclass(frozen=True)
class MoneyWithdrawn(DomainEvent):
    amount: Decimal
    currency: str
    transfer_id: uuid.UUID | None = None


@event_type("bank.AccountClosed")
@dataclasses.dataclass(frozen=True)
class AccountClosed(DomainEvent):
    pass


class BankAccount(Aggregate, type_name="bank.Account"):
    """An account in one currency; its balance may go below zero down to the overdraft."""

    def __init__(self, id: uuid.UUID) -> None:
        super().__init__(id)
        self.owner = ""
        self.currency = ""
        self.overdraft_limit = Decimal(0)
        self.balance = Decimal(0)
        self.closed = False

    @classmethod
    def open(
        cls, *, owner: str, currency: str, overdraft_limit: Decimal | str = "0", id=None
    ) -> BankAccount:
        owner = (owner or "").strip()
        if not visible(owner) or len(owner) > 200:
            raise Refusal("an owner name of 1 to 200 characters is required")
        if currency not in MINOR_UNITS:
            raise UnknownCurrency(f"{currency!r} is not a currency this bank keeps")
        limit = (
            Decimal(0) if Decimal(overdraft_limit or 0) == 0 else money(overdraft_limit, currency)
        )
        account = cls(id or uuid.uuid4())
        account.record(AccountOpened(owner, currency, limit))
        return account

    def deposit(
        self, amount: Decimal | str, *, transfer_id: uuid.UUID | None = None, refund: bool = False
    ) -> None:
        """Add money, up to the currency's maximum balance; a transfer's refund is accepted
        even on a closed account or past that maximum (money is never left in flight)."""
        if not refund:
            self._refuse_if_closed()
        value = money(amount, self.currency)
        if not refund:
            ceiling = MAX_BALANCE[self.currency]
            if self.balance + value > ceiling:
                raise BalanceLimit(
                    f"the balance {self.balance} {self.currency} plus {value} would pass the "
                    f"account's maximum of {ceiling}"
                )
        self.record(MoneyDeposited(value, self.currency, transfer_id))

    def withdraw(self, amount: Decimal | str, *, transfer_id: uuid.UUID | None = None) -> None:
        self._refuse_if_closed()
        value = money(amount, self.currency)
        if self.balance - value < -self.overdraft_limit:
            raise InsufficientFunds(
                f"balance {self.balance} {self.currency} with overdraft {self.overdraft_limit} "
                f"does not cover {value}"
            )
        self.record(MoneyWithdrawn(value, self.currency, transfer_id))

    def close(self) -> None:
        self._refuse_if_closed()
        if self.balance != 0:
            raise BalanceNotZero(f"the balance is {self.balance} {self.currency}, not zero")
        self.record(AccountClosed())

    def _refuse_if_closed(self) -> None:
        if self.closed:
            raise ClosedAccount(f"account {self.id} is closed")

    @applies(AccountOpened)
    def _opened(self, event: AccountOpened) -> None:
        self.owner = event.owner
        self.currency = event.currency
        self.overdraft_limit = event.overdraft_limit

    @applies(MoneyDeposited)
    def _deposited(self, event: MoneyDeposited) -> None:
        self.balance += event.amount

    @applies(MoneyWithdrawn)
    def _withdrawn(self, event: MoneyWithdrawn) -> None:
        self.balance -= event.amount

    @applies(AccountClosed)
    def _closed(self, event: AccountClosed) -> None:
        self.closed = True


@event_type("bank.TransferRequested")
@dataclasses.dataclass(frozen=True)
class TransferRequested(DomainEvent):
    source_id: uuid.UUID
    destination_id: uuid.UUID
    amount: Decimal
    currency: str


@event_type("bank.TransferDebited")
@dataclasses.dataclass(frozen=True)
class TransferDebited(DomainEvent):
    source_version: int


@event_type("bank.TransferCompleted")
@dataclasses.dataclass(frozen=True)
class TransferCompleted(DomainEvent):
    destination_version: int


@event_type("bank.TransferFailed")
@dataclasses.dataclass(frozen=True)
class TransferFailed(DomainEvent):
    code: str
    reason: str
    refunded: bool


class Transfer(Aggregate, type_name="bank.Transfer"):
    """A transfer between two accounts, run step by step by the transfer saga.

    requested -> debited -> completed, or -> failed (refunded when the source was debited).
    Money in flight is what a debited transfer holds until it completes or is refunded.
    """

    REQUESTED, DEBITED, COMPLETED, FAILED = "requested", "debited", "completed", "failed"

    def __init__(self, id: uuid.UUID) -> None:
        super().__init__(id)
        self.status = ""
        self.source_id: uuid.UUID | None = None
        self.destination_id: uuid.UUID | None = None
        self.amount = Decimal(0)
        self.currency = ""
        self.failure = ""

    @classmethod
    def request(
        cls, *, source_id: uuid.UUID, destination_id: uuid.UUID, amount, currency: str, id=None
    ) -> Transfer:
        if source_id == destination_id:
            raise SameAccount("a transfer needs two different accounts")
        transfer = cls(id or uuid.uuid4())
        transfer.record(
            TransferRequested(source_id, destination_id, money(amount, currency), currency)
        )
        return transfer

    def debited(self, source_version: int) -> None:
        self._expect(self.REQUESTED)
        self.record(TransferDebited(source_version))

    def completed(self, destination_version: int) -> None:
        self._expect(self.DEBITED)
        self.record(TransferCompleted(destination_version))

    def failed(self, refusal: Refusal) -> None:
        if self.status not in (self.REQUESTED, self.DEBITED):
            raise Refusal(f"transfer {self.id} is already {self.status}")
        self.record(TransferFailed(refusal.code, refusal.message, self.status == self.DEBITED))

    def _expect(self, status: str) -> None:
        if self.status != status:
            raise Refusal(f"transfer {self.id} is {self.status}, not {status}")

    @applies(TransferRequested)
    def _requested(self, event: TransferRequested) -> None:
        self.status = self.REQUESTED
        self.source_id = event.source_id
        self.destination_id = event.destination_id
        self.amount = event.amount
        self.currency = event.currency

    @applies(TransferDebited)
    def _debited(self, event: TransferDebited) -> None:
        self.status = self.DEBITED

    @applies(TransferCompleted)
    def _completed(self, event: TransferCompleted) -> None:
        self.status = self.COMPLETED

    @applies(TransferFailed)
    def _failed(self, event: TransferFailed) -> None:
        self.status = self.FAILED
        self.failure = event.reason
