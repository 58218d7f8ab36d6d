"""`manage.py snapshots --rebuild|--purge` on the database."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from eventsourcing_app.core.repository import Repository
from eventsourcing_app.models import Snapshot
from eventsourcing_app.wiring import get_repository
from tests.domain.sample import Account

pytestmark = pytest.mark.django_db


def snapshots(*args: str) -> str:
    out = StringIO()
    call_command("snapshots", "--no-progress", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def histories(settings):
    settings.EVENTSOURCING = {"SNAPSHOT_INTERVALS": {"sample.Account": 3}}
    accounts = get_repository(Account)
    created = []
    for deposits in (1, 4, 7):
        account = Account.open("Ada")
        for _ in range(deposits):
            account.deposit(Decimal("1.00"))
            accounts.save(account)
        created.append(account)
    return created


def test_rebuild_writes_one_snapshot_per_long_enough_stream(histories):
    Snapshot.objects.all().delete()
    assert "sample.Account: 2 snapshots written" in snapshots(
        "--rebuild", "--type", "sample.Account"
    )
    assert sorted(Snapshot.objects.values_list("version", flat=True)) == [5, 8]
    accounts = get_repository(Account)
    plain = Repository(Account, accounts.store)
    for account in histories:
        assert accounts.load(account.id).state() == plain.load(account.id).state()
    assert accounts.stale_snapshots == 0


def test_purge_deletes_and_loads_still_answer(histories):
    assert Snapshot.objects.exists()
    assert "snapshots deleted" in snapshots("--purge", "--type", "sample.Account")
    assert not Snapshot.objects.exists()
    assert get_repository(Account).load(histories[2].id).balance == Decimal("7.00")


def test_an_unknown_type_is_one_clear_line():
    with pytest.raises(CommandError, match=r"unknown aggregate type bank\.Nope; known: "):
        snapshots("--rebuild", "--type", "bank.Nope")
    with pytest.raises(CommandError, match="one of the arguments --rebuild --purge is required"):
        snapshots()
