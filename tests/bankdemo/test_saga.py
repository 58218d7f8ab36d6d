"""The transfer saga moves money exactly once, or refunds it, whatever crashes in between."""

from decimal import Decimal

import pytest

from bankdemo import saga, services
from bankdemo.models import AccountBalance, TransferStatus
from eventsourcing_app.core.context import metadata_context
from eventsourcing_app.models import Event, ProjectionCheckpoint

pytestmark = pytest.mark.usefixtures("log_db")


def account(currency="EUR", deposit="100.00"):
    opened, _ = services.account_open(owner="Ada", currency=currency)
    if deposit:
        services.account_deposit(account_id=opened.id, amount=deposit)
    return opened.id


def balance(account_id) -> Decimal:
    return services.accounts().load(account_id).balance


def money_in_the_bank() -> Decimal:
    """Balances plus what debited transfers hold in flight."""
    in_flight = sum((t.amount for t in TransferStatus.objects.filter(status="debited")), Decimal(0))
    return sum(AccountBalance.objects.values_list("balance", flat=True), Decimal(0)) + in_flight


def test_a_transfer_completes_with_causation_and_correlation():
    source, destination = account(), account(deposit=None)
    with metadata_context(user_id="7", correlation_id="transfer-request-1"):
        transfer, _ = services.transfer_request(
            source_id=source, destination_id=destination, amount="30.00"
        )
    services.settle_transfers()
    assert (balance(source), balance(destination)) == (Decimal("70.00"), Decimal("30.00"))
    status = TransferStatus.objects.get(transfer_id=transfer.id)
    assert status.status == "completed"
    trail = Event.objects.for_correlation("transfer-request-1").order_by("transaction_id", "id")
    assert [e.event_type for e in trail] == [
        "bank.TransferRequested",
        "bank.MoneyWithdrawn",
        "bank.TransferDebited",
        "bank.MoneyDeposited",
        "bank.TransferCompleted",
    ]
    requested = trail[0]
    assert trail[1].metadata["causation_id"] == f"event:{requested.id}"
    assert {e.metadata["user_id"] for e in trail} == {"7"}


@pytest.mark.parametrize(
    ("destination_kwargs", "code"),
    [({"currency": "USD"}, "currency_mismatch"), ({"closed": True}, "account_closed")],
)
def test_a_refused_credit_refunds_the_source(destination_kwargs, code):
    source = account()
    destination = account(currency=destination_kwargs.get("currency", "EUR"), deposit=None)
    if destination_kwargs.get("closed"):
        services.account_close(account_id=destination, reason="customer left")
    transfer, _ = services.transfer_request(
        source_id=source, destination_id=destination, amount="30.00"
    )
    services.settle_transfers()
    status = TransferStatus.objects.get(transfer_id=transfer.id)
    assert (status.status, status.failure_code, status.refunded) == ("failed", code, True)
    assert balance(source) == Decimal("100.00")


def test_insufficient_funds_fail_the_transfer_without_moving_money():
    source, destination = account(deposit="10.00"), account(deposit=None)
    transfer, _ = services.transfer_request(
        source_id=source, destination_id=destination, amount="30.00"
    )
    services.settle_transfers()
    status = TransferStatus.objects.get(transfer_id=transfer.id)
    assert (status.status, status.failure_code, status.refunded) == (
        "failed",
        "insufficient_funds",
        False,
    )
    assert (balance(source), balance(destination)) == (Decimal("10.00"), Decimal("0"))


@pytest.mark.parametrize("crash_in", ["debit_source", "credit_destination"])
def test_a_crash_in_a_step_neither_debits_twice_nor_loses_money(monkeypatch, crash_in):
    source, destination = account(), account(deposit=None)
    total = money_in_the_bank()
    original = services.move_money
    crashes = []

    def crash_after_moving(*args, **kwargs):
        result = original(*args, **kwargs)
        if not crashes:
            crashes.append(args)
            raise RuntimeError("the worker died right after moving money")
        return result

    step = getattr(saga.TransferSaga, crash_in)

    def crashing_step(self, event, batch):
        monkeypatch.setattr(services, "move_money", crash_after_moving)
        try:
            return step(self, event, batch)
        finally:
            monkeypatch.setattr(services, "move_money", original)

    monkeypatch.setitem(saga.TransferSaga.handlers, _event_type(crash_in), crashing_step)
    transfer, _ = services.transfer_request(
        source_id=source, destination_id=destination, amount="30.00"
    )
    services.settle_transfers()
    checkpoint = ProjectionCheckpoint.objects.get(name="bank.transfer_saga")
    assert checkpoint.status == "failed"
    assert "the worker died" in checkpoint.last_error
    assert money_in_the_bank() == total
    monkeypatch.setitem(saga.TransferSaga.handlers, _event_type(crash_in), step)
    ProjectionCheckpoint.objects.filter(name="bank.transfer_saga").update(owner="")
    services.settle_transfers()  # the restarted worker takes the step again
    assert (balance(source), balance(destination)) == (Decimal("70.00"), Decimal("30.00"))
    assert TransferStatus.objects.get(transfer_id=transfer.id).status == "completed"
    assert money_in_the_bank() == total
    assert Event.objects.filter(event_type="bank.MoneyWithdrawn", aggregate_id=source).count() == 1


def _event_type(step: str) -> str:
    return {"debit_source": "bank.TransferRequested", "credit_destination": "bank.TransferDebited"}[
        step
    ]
