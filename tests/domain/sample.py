"""A small account aggregate for the domain tests (no Django here either)."""

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal

from eventsourcing_app.domain import Aggregate, DomainEvent, applies, event_type, upcaster


class InsufficientFunds(Exception):
    pass


@event_type("sample.AccountOpened")
@dataclasses.dataclass(frozen=True)
class AccountOpened(DomainEvent):
    owner: str
    opened_on: dt.date


@event_type("sample.MoneyDeposited", version=3)
@dataclasses.dataclass(frozen=True)
class MoneyDeposited(DomainEvent):
    amount: Decimal
    currency: str
    reference: uuid.UUID | None = None


@event_type("sample.MoneyWithdrawn")
@dataclasses.dataclass(frozen=True)
class MoneyWithdrawn(DomainEvent):
    amount: Decimal
    at: dt.datetime


@upcaster("sample.MoneyDeposited", from_version=1)
def deposit_v1_to_v2(data: dict) -> dict:
    """v1 had no currency: every account was in euros then."""
    return {**data, "currency": "EUR"}


@upcaster("sample.MoneyDeposited", from_version=2)
def deposit_v2_to_v3(data: dict) -> dict:
    """v3 renamed `value` to `amount` and added an optional reference."""
    value = data.pop("value")
    return {**data, "amount": value, "reference": None}


class Account(Aggregate, type_name="sample.Account"):
    def __init__(self, id: uuid.UUID) -> None:
        super().__init__(id)
        self.owner: str | None = None
        self.balance = Decimal("0.00")
        self.movements: list[Decimal] = []

    @classmethod
    def open(cls, owner: str, opened_on: dt.date | None = None) -> "Account":
        account = cls(uuid.uuid4())
        account.record(AccountOpened(owner, opened_on or dt.date(2026, 1, 2)))
        return account

    def deposit(self, amount: Decimal) -> None:
        if amount <= 0:
            raise ValueError("amounts are positive")
        self.record(MoneyDeposited(amount, "EUR"))

    def withdraw(self, amount: Decimal) -> None:
        if amount > self.balance:
            raise InsufficientFunds(f"{amount} > {self.balance}")
        at = dt.datetime(2026, 1, 3, 9, 30, tzinfo=dt.UTC)
        self.record(MoneyWithdrawn(amount, at))

    @applies(AccountOpened)
    def _opened(self, event: AccountOpened) -> None:
        self.owner = event.owner

    @applies(MoneyDeposited)
    def _deposited(self, event: MoneyDeposited) -> None:
        self.balance += event.amount
        self.movements.append(event.amount)

    @applies(MoneyWithdrawn)
    def _withdrawn(self, event: MoneyWithdrawn) -> None:
        self.balance -= event.amount
        self.movements.append(-event.amount)

    def state(self) -> tuple:
        return (self.id, self.version, self.owner, self.balance, tuple(self.movements))
