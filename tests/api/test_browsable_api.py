"""Every GET endpoint of the API, opened in a browser (Accept: text/html) by a signed-in teller
or auditor: the browsable API renders, never a 500."""

import pytest
from django.urls import URLPattern, reverse

from bankdemo import seeding
from bankdemo.api import urls as api_urls
from bankdemo.domain import BankAccount, Transfer
from eventsourcing_app.models import Event
from tests.api.conftest import staff

pytestmark = pytest.mark.usefixtures("log_db")
HTML = "text/html"


@pytest.fixture
def bank():
    seeding.seed_history(accounts=2, events=12, progress=lambda n: None)
    seeding.seed_transfers(1)
    seeding.catch_up_projections()
    account = Event.objects.filter(aggregate_type=BankAccount.type_name).first().aggregate_id
    transfer = Event.objects.filter(aggregate_type=Transfer.type_name).first().aggregate_id
    return {"account_id": account, "transfer_id": transfer}


def api_paths(ids: dict) -> list[str]:
    """The path of every route of the API, its ids those of an existing account and transfer."""
    paths = []
    for pattern in api_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        kwargs = {name: str(ids[name]) for name in pattern.pattern.converters}
        paths.append(reverse(pattern.name, kwargs=kwargs))
    return paths


@pytest.mark.parametrize("group", ["tellers", "auditors"])
def test_every_get_endpoint_renders_in_a_browser(client, bank, group):
    client.force_login(staff(f"someone-{group}", group))
    paths = api_paths(bank)
    assert "/api/accounts/{account_id}/events/".format(**bank) in paths
    for path in paths:
        response = client.get(path, HTTP_ACCEPT=HTML)
        assert response.status_code < 500, (path, response.status_code)
        if response.status_code == 200 and path not in ("/api/schema/",):
            assert response["Content-Type"].startswith(HTML), path


def test_an_accounts_events_open_in_the_browsable_api(client, bank):
    client.force_login(staff("auditor", "auditors"))
    response = client.get(f"/api/accounts/{bank['account_id']}/events/", HTTP_ACCEPT=HTML)
    assert response.status_code == 200
    assert response["Content-Type"].startswith(HTML)
    assert b"bank.AccountOpened" in response.content
    # JSON stays the default for API clients.
    as_json = client.get(f"/api/accounts/{bank['account_id']}/events/")
    assert as_json["Content-Type"] == "application/json"
    assert as_json.json()["results"][0]["event_type"] == "bank.AccountOpened"


def test_the_filtered_event_list_still_has_its_filter_form(client, bank):
    client.force_login(staff("auditor", "auditors"))
    response = client.get("/api/events/", HTTP_ACCEPT=HTML)
    assert response.status_code == 200
    assert b"Filters" in response.content
