"""Who and why on the audit pages: the username recorded then (beside the stable id) and the
command's reason, on the event list, the timeline, the event page and the correlation trail."""

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from bankdemo import services
from eventsourcing_app.core.context import metadata_context
from eventsourcing_app.models import Event

pytestmark = pytest.mark.usefixtures("log_db")
EVENTS = "/admin/eventsourcing_app/event/"
REASON = "customer <b>moved</b> abroad"
ESCAPED = "customer &lt;b&gt;moved&lt;/b&gt; abroad"


@pytest.fixture
def teller_commands():
    """An account opened, funded, emptied and closed by "alice" through the API, then a
    transfer with a reason; alice is renamed afterwards."""
    alice = User.objects.create_user("alice")
    alice.groups.add(Group.objects.get_or_create(name="tellers")[0])
    api = APIClient()
    api.force_authenticate(alice)
    headers = {"X-Correlation-ID": "who-why-1"}
    account = api.post("/api/accounts/", {"owner": "Ada", "currency": "EUR"}, format="json")
    account_id = account.json()["id"]
    other = api.post("/api/accounts/", {"owner": "Bob", "currency": "EUR"}, format="json")
    api.post(f"/api/accounts/{account_id}/deposit/", {"amount": "9.00"}, format="json")
    transfer = api.post(
        "/api/transfers/",
        {"source_id": account_id, "destination_id": other.json()["id"], "amount": "9.00",
         "reason": "savings plan"},
        format="json",
        headers=headers,
    )  # fmt: skip
    assert transfer.status_code == 202
    services.settle_transfers()
    closed = api.post(f"/api/accounts/{account_id}/close/", {"reason": REASON}, format="json")
    assert closed.status_code == 200
    alice.username = "alice-renamed"
    alice.save()
    return alice, account_id


def auditor(client):
    user = User.objects.create_user("auditor-1", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name="auditors")[0])
    client.force_login(user)


def closing_event(account_id) -> Event:
    return Event.objects.get(aggregate_id=account_id, event_type="bank.AccountClosed")


def test_the_event_list_shows_the_username_and_the_reason(client, teller_commands):
    alice, _ = teller_commands
    auditor(client)
    page = client.get(EVENTS).content.decode()
    assert "column-reason" in page
    assert f'<span title="user id {alice.pk}">alice</span>' in page
    assert f'<span title="{ESCAPED}">{ESCAPED}</span>' in page
    assert "alice-renamed</span>" not in page  # the name then, not the name now
    assert "savings plan" in page


def test_the_timeline_shows_who_and_why_on_each_card(client, teller_commands):
    alice, account_id = teller_commands
    auditor(client)
    page = client.get(f"{EVENTS}timeline/{account_id}/").content.decode()
    assert f"alice (id {alice.pk})" in page
    assert f"<strong>Reason:</strong> {ESCAPED}" in page
    assert "<strong>Reason:</strong> savings plan" in page  # the saga's withdrawal
    assert REASON not in page  # escaped, never markup


def test_the_event_page_shows_who_and_why(client, teller_commands):
    alice, account_id = teller_commands
    auditor(client)
    page = client.get(f"{EVENTS}{closing_event(account_id).pk}/change/").content.decode()
    assert 'id="who-why"' in page
    assert f'id="event-user">alice <span class="es-meta">(user id {alice.pk}' in page
    assert f'id="event-reason">{ESCAPED}</td>' in page


def test_the_correlation_trail_shows_who_and_why(client, teller_commands):
    alice, _ = teller_commands
    auditor(client)
    page = client.get(f"{EVENTS}correlation/who-why-1/").content.decode()
    assert "<th>User</th><th>Reason</th>" in page
    assert page.count(f'<span title="user id {alice.pk}">alice</span>') == 5
    assert page.count("<td>savings plan</td>") == 5


def test_events_without_a_username_show_the_id_and_no_reason(client):
    with metadata_context(user_id="ops-7", correlation_id="old-style"):
        account, _ = services.account_open(owner="Old", currency="EUR")
    auditor(client)
    timeline = client.get(f"{EVENTS}timeline/{account.id}/").content.decode()
    assert '<span class="es-who">ops-7</span>' in timeline
    assert "<strong>Reason:</strong>" not in timeline
    trail = client.get(f"{EVENTS}correlation/old-style/").content.decode()
    assert "<td>ops-7</td>\n  <td>-</td>" in trail
    event = Event.objects.get(aggregate_id=account.id)
    page = client.get(f"{EVENTS}{event.pk}/change/").content.decode()
    assert 'id="event-user">ops-7</td>' in page
    assert 'id="event-reason">-</td>' in page
