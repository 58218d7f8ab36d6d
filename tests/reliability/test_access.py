"""Who may do what, endpoint by endpoint and page by page, with the exact status."""

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from rest_framework.test import APIClient

from bankdemo import services
from eventsourcing_app.models import Event

pytestmark = pytest.mark.django_db
ROLES = ("anonymous", "auditor", "teller", "admin")


@pytest.fixture
def world():
    account, _ = services.account_open(owner="Ada", currency="EUR")
    services.account_deposit(account_id=account.id, amount="50.00")
    other, _ = services.account_open(owner="Bob", currency="EUR")
    empty, _ = services.account_open(owner="Cy", currency="EUR")
    transfer, _ = services.transfer_request(
        source_id=account.id, destination_id=other.id, amount="1.00"
    )
    return {"account": account.id, "other": other.id, "empty": empty.id, "transfer": transfer.id}


def user(role: str) -> User | None:
    if role == "anonymous":
        return None
    created = User.objects.create_user(
        role, is_staff=role in ("auditor", "admin"), is_superuser=role == "admin"
    )
    if role in ("auditor", "teller"):
        created.groups.add(Group.objects.get_or_create(name=f"{role}s")[0])
    return created


def api(role: str) -> APIClient:
    client = APIClient()
    if (account := user(role)) is not None:
        client.force_authenticate(account)
    return client


READS = [
    "/api/accounts/",
    "/api/accounts/{account}/",
    "/api/accounts/{account}/events/",
    "/api/accounts/{account}/state/?version=1",
    "/api/transfers/{transfer}/",
    "/api/events/",
    "/api/projections/",
]
READ_STATUS = {"anonymous": 401, "auditor": 200, "teller": 200, "admin": 200}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("path", READS)
def test_reads(world, role, path):
    assert api(role).get(path.format(**world)).status_code == READ_STATUS[role]


COMMANDS = [
    ("/api/accounts/", {"owner": "Dee", "currency": "EUR"}, 201),
    ("/api/accounts/{account}/deposit/", {"amount": "1.00"}, 200),
    ("/api/accounts/{account}/withdraw/", {"amount": "1.00"}, 200),
    ("/api/accounts/{empty}/close/", {"reason": "customer left"}, 200),
    ("/api/transfers/", {"source_id": "{account}", "destination_id": "{other}", "amount": "1.00"},
     202),
]  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("path", "body", "allowed"), COMMANDS)
def test_commands(world, role, path, body, allowed):
    body = {key: value.format(**world) for key, value in body.items()}
    events = Event.objects.count()
    status = api(role).post(path.format(**world), body, format="json").status_code
    expected = {"anonymous": 401, "auditor": 403, "teller": allowed, "admin": allowed}[role]
    assert status == expected
    assert (Event.objects.count() > events) == (expected == allowed)


@pytest.mark.parametrize("role", ROLES)
def test_no_endpoint_deletes_or_changes_an_account(world, role):
    client = api(role)
    path = f"/api/accounts/{world['account']}/"
    statuses = {client.delete(path).status_code, client.put(path, {}).status_code}
    assert statuses <= {401, 403, 405}
    assert (role == "anonymous") == (statuses == {401})


PAGES = [
    "/admin/",
    "/admin/eventsourcing_app/event/",
    "/admin/eventsourcing_app/event/timeline/{account}/",
    "/admin/eventsourcing_app/event/timeline/{account}/state/?at=1",
    "/admin/eventsourcing_app/snapshot/",
    "/admin/eventsourcing_app/projectioncheckpoint/",
    "/admin/bankdemo/accountbalance/",
]
PAGE_STATUS = {"anonymous": 302, "teller": 302, "auditor": 200, "admin": 200}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("path", PAGES)
def test_admin_pages(world, role, path):
    client = Client()
    if (account := user(role)) is not None:
        client.force_login(account)
    assert client.get(path.format(**world)).status_code == PAGE_STATUS[role]


@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_nobody_changes_or_deletes_a_stored_event_through_the_admin(world, role):
    client = Client()
    client.force_login(user(role))
    event = Event.objects.first()
    change = f"/admin/eventsourcing_app/event/{event.pk}/change/"
    assert client.post(change, {"event_type": "x.Y"}).status_code == 403
    assert client.post(f"/admin/eventsourcing_app/event/{event.pk}/delete/").status_code == 403
    assert Event.objects.get(pk=event.pk).event_type == event.event_type


def test_session_writes_need_the_csrf_token(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user("teller"))
    response = client.post(
        f"/api/accounts/{world['account']}/deposit/",
        {"amount": "1.00"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
