"""The home page shows the bank to its staff, and says when a read model is still catching up;
to anyone else it shows no owner, balance or event."""

import pytest
from django.contrib.auth.models import Group

from bankdemo import services
from bankdemo.api.permissions import AUDITORS
from eventsourcing_app.models import Event

pytestmark = pytest.mark.usefixtures("log_db")


@pytest.fixture
def auditor(django_user_model):
    user = django_user_model.objects.create_user("home-auditor", password="x")
    user.groups.add(Group.objects.get(name=AUDITORS))
    return user


def test_home_shows_accounts_events_and_lag_to_staff(client, auditor):
    account, _ = services.account_open(owner="Ada Lovelace", currency="JPY")
    services.account_deposit(account_id=account.id, amount="1500")
    client.force_login(auditor)
    page = client.get("/").content.decode()
    assert "Ada Lovelace" in page
    assert "1500" in page
    assert "bank.MoneyDeposited" in page
    assert "processing: 2 events behind" in page


@pytest.mark.parametrize("who", ["anonymous", "a user in no staff group"])
def test_home_shows_no_personal_or_financial_data_to_others(client, django_user_model, who):
    account, _ = services.account_open(owner="Grace Hopper", currency="EUR")
    services.account_deposit(account_id=account.id, amount="987654.32")
    if who != "anonymous":
        client.force_login(django_user_model.objects.create_user("visitor", password="x"))
    response = client.get("/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "sign in" in page
    for secret in ("Grace Hopper", "987654", "bank.MoneyDeposited", str(account.id)[:8]):
        assert secret not in page
    correlation = Event.objects.filter(aggregate_id=account.id).first().metadata["correlation_id"]
    assert correlation[:18] not in page
