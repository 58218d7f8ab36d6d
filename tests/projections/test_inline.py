"""Inline projections commit and roll back with the events that feed them, on every backend.

The store calls its after-append hook inside the append's transaction whatever its recorder,
so a store on the in-memory recorder updates the same read models as one on the database.
"""

from decimal import Decimal

import pytest
from django.db import transaction

from eventsourcing_app.core.memory import InMemoryRecorder
from eventsourcing_app.models import Event
from eventsourcing_app.wiring import get_event_store
from tests.domain.sample import Account
from tests.projectionapp import projections
from tests.projectionapp.models import Balance
from tests.projections.helpers import accounts_repository, open_account

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["database", "memory"])
def store(request):
    """A store as the app wires it, on the database's recorder or on the in-memory one."""
    if request.param == "memory":
        return get_event_store(recorder=InMemoryRecorder())
    return get_event_store()


def test_an_append_updates_the_inline_read_model_at_once(store):
    account = open_account("Ada", "10.00", "5.50", store=store)
    row = Balance.objects.get(account_id=account.id)
    assert (row.owner, row.balance, row.version) == ("Ada", Decimal("15.50"), 3)
    account.withdraw(Decimal("0.50"))
    accounts_repository(store).save(account)
    row.refresh_from_db()
    assert (row.balance, row.version) == (Decimal("15.00"), 4)


class Boom(Exception):
    pass


def test_a_rolled_back_append_leaves_neither_events_nor_read_model_rows():
    account = Account.open("Ada")
    account.deposit(Decimal("1.00"))

    def save_then_fail():
        with transaction.atomic():
            accounts_repository().save(account)
            assert Balance.objects.filter(account_id=account.id).exists()
            raise Boom

    with pytest.raises(Boom):
        save_then_fail()
    assert not Event.objects.filter(aggregate_id=account.id).exists()
    assert not Balance.objects.filter(account_id=account.id).exists()


def test_an_inline_handler_that_raises_rolls_the_append_back(monkeypatch, store):
    account = open_account("Ada", "1.00", store=store)

    def broken(self, event, batch):
        raise RuntimeError("read model is broken")

    monkeypatch.setitem(projections.Balances.handlers, "sample.MoneyDeposited", broken)
    account.deposit(Decimal("2.00"))
    with pytest.raises(Exception, match="read model is broken"):
        accounts_repository(store).save(account)
    assert store.recorder.count(account.id) == 2
    assert Balance.objects.get(account_id=account.id).balance == Decimal("1.00")
