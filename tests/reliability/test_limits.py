"""The domain refuses what the read models cannot hold; events at the limits project everywhere.

Read models keep money in numeric(20,3). Amounts stay below 10^15 and balances at or below
10^16 less one minor unit, so every event the domain can produce fits: the largest amounts,
full accounts, the deepest overdrafts, in every currency. A transfer whose credit is refused is
failed and refunded; a read model that fails never holds up the saga for other transfers.
"""

from decimal import Decimal

import pytest
from django.db import connection
from rest_framework.test import APIClient

from bankdemo import projections, services
from bankdemo.domain import MAX_BALANCE, MINOR_UNITS, BalanceLimit, BankAccount
from bankdemo.models import AccountBalance, LedgerEntry, TransferStatus
from eventsourcing_app.models import Event, ProjectionCheckpoint
from eventsourcing_app.projections import registry
from eventsourcing_app.projections.worker import ProjectionWorker
from eventsourcing_app.wiring import get_event_store
from tests.api.conftest import staff

pytestmark = pytest.mark.usefixtures("log_db")


def largest_amount(currency: str) -> Decimal:
    return Decimal(10**15) - Decimal(1).scaleb(-MINOR_UNITS[currency])


def fill(account_id, currency: str) -> None:
    """Deposit the largest amounts until the account is exactly at its maximum balance."""
    left = MAX_BALANCE[currency]
    while left > 0:
        amount = min(left, largest_amount(currency))
        services.account_deposit(account_id=account_id, amount=str(amount))
        left -= amount


def run_every_projection() -> None:
    worker = ProjectionWorker(registry.select(), get_event_store(), owner="limits")
    while worker.run_once():
        pass


def same_money(stored: Decimal, expected: Decimal) -> bool:
    """Exact on PostgreSQL; SQLite keeps decimals as 8-byte floats (15 significant digits)."""
    if connection.vendor == "postgresql":
        return stored == expected
    return abs(stored - expected) <= abs(expected) * Decimal("1e-14") + 1


@pytest.mark.parametrize("currency", sorted(MINOR_UNITS))
def test_the_domain_refuses_a_deposit_past_the_maximum_balance(currency):
    account = BankAccount.open(owner="Ada", currency=currency)
    account.mark_saved()
    left = MAX_BALANCE[currency]
    while left > 0:
        amount = min(left, largest_amount(currency))
        account.deposit(amount)
        left -= amount
    assert account.balance == MAX_BALANCE[currency]
    with pytest.raises(BalanceLimit, match="maximum"):
        account.deposit(Decimal(1).scaleb(-MINOR_UNITS[currency]))
    account.deposit(largest_amount(currency), refund=True)  # a refund is never refused
    assert account.balance == MAX_BALANCE[currency] + largest_amount(currency)


def test_the_api_answers_422_balance_limit_and_appends_nothing():
    client = APIClient()
    client.force_authenticate(staff("limit-teller", "tellers"))
    opened = client.post("/api/accounts/", {"owner": "Ada", "currency": "EUR"}, format="json")
    account_id = opened.json()["id"]
    fill(account_id, "EUR")
    before = Event.objects.filter(aggregate_id=account_id).count()
    refused = client.post(f"/api/accounts/{account_id}/deposit/", {"amount": "0.01"}, format="json")
    assert refused.status_code == 422
    assert refused.json()["code"] == "balance_limit"
    assert Event.objects.filter(aggregate_id=account_id).count() == before


@pytest.mark.parametrize("currency", sorted(MINOR_UNITS))
def test_events_at_the_limits_are_accepted_by_every_projection(currency):
    largest = largest_amount(currency)
    full, _ = services.account_open(owner="Full", currency=currency)
    fill(full.id, currency)
    deep, _ = services.account_open(owner="Deep", currency=currency, overdraft_limit=str(largest))
    services.account_withdraw(account_id=deep.id, amount=str(largest))  # at its overdraft
    rich, _ = services.account_open(owner="Rich", currency=currency)
    for _ in range(2):  # enough for both transfers, whichever the saga debits first
        services.account_deposit(account_id=rich.id, amount=str(largest))
    refused, _ = services.transfer_request(source_id=rich.id, destination_id=full.id,
                                           amount=str(largest))  # fmt: skip
    smallest = Decimal(1).scaleb(-MINOR_UNITS[currency])
    accepted, _ = services.transfer_request(source_id=rich.id, destination_id=deep.id,
                                            amount=str(smallest))  # fmt: skip
    run_every_projection()
    failed = list(
        ProjectionCheckpoint.objects.filter(status="failed").values_list("name", flat=True)
    )
    assert failed == []
    balances = {row.account_id: row.balance for row in AccountBalance.objects.all()}
    repository = services.accounts()
    for account_id in (full.id, deep.id, rich.id):
        assert same_money(balances[account_id], repository.load(account_id).balance)
    assert same_money(balances[full.id], MAX_BALANCE[currency])
    assert same_money(balances[deep.id], -largest + smallest)
    assert same_money(balances[rich.id], 2 * largest - smallest)  # the refused one was refunded
    statuses = {row.transfer_id: row for row in TransferStatus.objects.all()}
    assert (statuses[refused.id].status, statuses[refused.id].failure_code) == (
        "failed",
        "balance_limit",
    )
    assert statuses[accepted.id].status == "completed"
    assert (
        LedgerEntry.objects.filter(account_id=full.id).count()
        == repository.load(full.id).version - 1
    )


def test_a_failing_read_model_never_holds_up_the_saga(monkeypatch):
    def broken(self, event, batch):
        raise RuntimeError("the transfer read model is broken")

    monkeypatch.setitem(projections.Transfers.handlers, "bank.TransferRequested", broken)
    source, _ = services.account_open(owner="Source", currency="EUR")
    services.account_deposit(account_id=source.id, amount="100.00")
    destinations = [services.account_open(owner=f"D{n}", currency="EUR")[0] for n in range(3)]
    for destination in destinations:
        services.transfer_request(source_id=source.id, destination_id=destination.id,
                                  amount="10.00")  # fmt: skip
    services.settle_transfers()
    assert ProjectionCheckpoint.objects.get(name="bank.transfers").status == "failed"
    assert ProjectionCheckpoint.objects.get(name="bank.transfer_saga").status == "ok"
    repository = services.accounts()
    assert repository.load(source.id).balance == Decimal("70.00")
    assert [repository.load(d.id).balance for d in destinations] == [Decimal("10.00")] * 3
