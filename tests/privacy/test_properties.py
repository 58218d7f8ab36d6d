"""For any accounts, any deposits and withdrawals and any subjects forgotten among them: no
forgotten owner is left in any table, every kept owner is, every chain verifies, and each
account loads with its balance, its owner read as erased exactly when it was forgotten."""

import json
import secrets
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bankdemo import services
from bankdemo.domain import BankAccount, InsufficientFunds
from bankdemo.models import AccountBalance
from eventsourcing_app.core.personal import ERASED
from eventsourcing_app.core.verification import verify_chains
from eventsourcing_app.wiring import get_recorder, get_repository
from tests.privacy.test_forget import database_text

pytestmark = pytest.mark.usefixtures("log_db")

# Letters only, some beyond ASCII (escaped in JSON text); each owner also gets a token of
# digits of the example's own, so no name is found by chance, nor one from another example.
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZäéøßŁж"
names = st.lists(st.text(LETTERS, min_size=6, max_size=16), min_size=1, max_size=4, unique=True)
amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("300"), places=2)


@st.composite
def histories(draw):
    """Owners, commands on their accounts, the accounts snapshotted and those forgotten."""
    owners = draw(names)
    count = len(owners)
    commands = draw(st.lists(
        st.tuples(st.integers(0, count - 1), st.sampled_from(["deposit", "withdraw"]), amounts),
        max_size=12,
    ))  # fmt: skip
    snapshotted = draw(st.sets(st.integers(0, count - 1)))
    forgotten = draw(st.sets(st.integers(0, count - 1), min_size=1))
    return owners, commands, snapshotted, forgotten


def in_text(value: str, text: str) -> bool:
    """Whether `value` occurs in `text` as it is, or as JSON writes it with escapes."""
    return value in text or json.dumps(value)[1:-1] in text


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories())
def test_after_erasure_no_forgotten_owner_is_left_and_everything_else_is(history):
    drawn, commands, snapshotted, forgotten = history
    token = f"{secrets.randbelow(10**9):09d}"
    owners = [f"{name} {token}{index}" for index, name in enumerate(drawn)]
    ids = [services.account_open(owner=owner, currency="EUR")[0].id for owner in owners]
    balances = [Decimal(0)] * len(ids)
    for index, action, amount in commands:
        if action == "deposit":
            services.account_deposit(account_id=ids[index], amount=amount)
            balances[index] += amount
            continue
        try:
            services.account_withdraw(account_id=ids[index], amount=amount)
        except InsufficientFunds:
            assert amount > balances[index]
            continue
        balances[index] -= amount
    repository = get_repository(BankAccount)
    for index in snapshotted:
        repository.write_snapshot(repository.load(ids[index]))
    assert [repository.load(account_id).balance for account_id in ids] == balances

    for index in sorted(forgotten):
        call_command("forget_subject", str(ids[index]), "--reason", "property", stdout=StringIO())

    text = database_text()
    for index, (account_id, owner) in enumerate(zip(ids, owners, strict=True)):
        loaded = repository.load(account_id)
        row = AccountBalance.objects.get(account_id=account_id)
        assert loaded.balance == row.balance == balances[index]
        if index in forgotten:
            assert not in_text(owner, text), f"{owner!r} is still in the database"
            assert loaded.owner == row.owner == ERASED
        else:
            assert owner in text
            assert loaded.owner == row.owner == owner
    report = verify_chains(get_recorder())
    assert report.intact, report.breaks
    assert report.events_checked >= len(ids) + len(forgotten)
