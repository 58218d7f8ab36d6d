"""The bank domain's rules, with no database."""

from decimal import Decimal

import pytest

from bankdemo.domain import (
    BalanceNotZero,
    BankAccount,
    ClosedAccount,
    InsufficientFunds,
    InvalidAmount,
    Refusal,
    SameAccount,
    Transfer,
    UnknownCurrency,
    money,
)
from eventsourcing_app.domain import registry, upcasters


def opened(overdraft="0", currency="EUR") -> BankAccount:
    return BankAccount.open(owner="Ada", currency=currency, overdraft_limit=overdraft)


def test_deposits_withdrawals_and_the_overdraft():
    account = opened(overdraft="50.00")
    account.deposit("100.00")
    account.withdraw(Decimal("149.99"))
    assert account.balance == Decimal("-49.99")
    with pytest.raises(InsufficientFunds):
        account.withdraw("0.02")
    assert account.version == 3


@pytest.mark.parametrize(
    ("amount", "currency", "error"),
    [
        ("0", "EUR", InvalidAmount),
        ("-1", "EUR", InvalidAmount),
        ("1.001", "EUR", InvalidAmount),
        ("1.5", "JPY", InvalidAmount),
        ("NaN", "EUR", InvalidAmount),
        ("lots", "EUR", InvalidAmount),
        ("1e30", "EUR", InvalidAmount),
        ("1.00", "XXX", UnknownCurrency),
    ],
)
def test_amounts_are_positive_and_in_the_currencys_minor_units(amount, currency, error):
    with pytest.raises(error):
        money(amount, currency)


def test_minor_units_are_kept():
    assert money("12.5", "EUR") == Decimal("12.50")
    assert money("7", "KWD") == Decimal("7.000")
    assert money("1000", "JPY") == Decimal("1000")


def test_closing_needs_a_zero_balance_and_ends_movements():
    account = opened()
    account.deposit("1.00")
    with pytest.raises(BalanceNotZero):
        account.close()
    account.withdraw("1.00")
    account.close()
    with pytest.raises(ClosedAccount):
        account.deposit("1.00")
    account.deposit("1.00", refund=True)  # a transfer's refund is never refused
    assert account.balance == Decimal("1.00")


def test_a_transfer_needs_two_accounts():
    account = opened()
    with pytest.raises(SameAccount):
        Transfer.request(
            source_id=account.id, destination_id=account.id, amount="1", currency="EUR"
        )


def test_stored_v1_and_v2_deposits_read_as_v3():
    v1 = upcasters.upcast("bank.MoneyDeposited", 1, {"sum": "5.00"}, 3)
    v2 = upcasters.upcast("bank.MoneyDeposited", 2, {"sum": "6.00", "currency": "USD"}, 3)
    assert registry.decode("bank.MoneyDeposited", v1).amount == Decimal("5.00")
    assert (registry.decode("bank.MoneyDeposited", v2).currency, v2["amount"]) == ("USD", "6.00")


@pytest.mark.parametrize(
    "owner",
    ["", "   ", "\u200b\u200b", "\u200c\u200d\u2060", " \ufeff ", "\u202e\u200f", "\x07\x1f"],
)
def test_an_owner_with_nothing_visible_is_refused(owner):
    with pytest.raises(Refusal, match="owner name"):
        BankAccount.open(owner=owner, currency="EUR")


def test_an_owner_with_one_visible_character_among_invisible_ones_is_kept():
    assert BankAccount.open(owner="\u200bA\u200b", currency="EUR").owner == "\u200bA\u200b"
