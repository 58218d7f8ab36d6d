"""What test_access.py leaves out: every write method on every event URL, production start-up
without a secret, and error pages that give nothing away."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from bankdemo import services, views
from eventsourcing_app.models import Event
from tests.reliability.fingerprint import log_fingerprint

ROOT = Path(__file__).resolve().parents[2]
WRITES = ("post", "put", "patch", "delete")
EVENTS = "/admin/eventsourcing_app/event/"


@pytest.fixture
def world(db):
    account, _ = services.account_open(owner="Ada", currency="EUR")
    services.account_deposit(account_id=account.id, amount="50.00")
    other, _ = services.account_open(owner="Bob", currency="EUR")
    transfer, _ = services.transfer_request(
        source_id=account.id, destination_id=other.id, amount="1.00"
    )
    event = Event.objects.get(aggregate_id=account.id, version=2)
    return {"account": account.id, "transfer": transfer.id, "event": event.pk, "correlation": "c-1"}


@pytest.fixture
def admin_user(db) -> User:
    return User.objects.create_user("root", is_staff=True, is_superuser=True)


# (a) Nothing changes or deletes a stored event, whatever the method, even for a superuser.

API_READS = [
    "/api/events/",
    "/api/accounts/{account}/events/",
    "/api/accounts/{account}/state/?version=1",
    "/api/accounts/{account}/",
    "/api/transfers/{transfer}/",
    "/api/projections/",
]
# Commands append through POST (test_access.py); no other method reaches them.
API_COMMANDS = [
    "/api/accounts/",
    "/api/accounts/{account}/deposit/",
    "/api/accounts/{account}/withdraw/",
    "/api/accounts/{account}/close/",
    "/api/transfers/",
]
API_CASES = [(path, method) for path in API_READS for method in WRITES] + [
    (path, method) for path in API_COMMANDS for method in WRITES if method != "post"
]


@pytest.mark.parametrize(("path", "method"), API_CASES)
def test_no_api_method_changes_or_deletes_events(world, admin_user, path, method):
    client = APIClient()
    client.force_authenticate(admin_user)
    before = log_fingerprint()
    response = getattr(client, method)(path.format(**world), {"event_type": "x.Y"}, format="json")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert log_fingerprint() == before


# The admin refuses add, change and delete outright (403). Its other pages are read-only views
# that answer any method with the page itself, as Django's admin does; none of them writes.
ADMIN_CASES = [
    *[(f"{EVENTS}add/", method, 403) for method in ("get", *WRITES)],
    *[(f"{EVENTS}{{event}}/delete/", method, 403) for method in ("get", *WRITES)],
    (f"{EVENTS}{{event}}/change/", "post", 403),
    *[(f"{EVENTS}{{event}}/change/", method, 200) for method in ("put", "patch", "delete")],
    # History leads to the event's timeline, as auditors expect of the History button.
    *[(f"{EVENTS}{{event}}/history/", method, 302) for method in WRITES],
    *[(f"{EVENTS}timeline/{{account}}/", method, 200) for method in WRITES],
    *[(f"{EVENTS}timeline/{{account}}/state/?at=1", method, 200) for method in WRITES],
    *[(f"{EVENTS}timeline/{{account}}/compare/?a=1&b=2", method, 200) for method in WRITES],
    *[(f"{EVENTS}correlation/{{correlation}}/", method, 200) for method in WRITES],
]


@pytest.mark.parametrize(("path", "method", "status"), ADMIN_CASES)
def test_no_admin_view_changes_or_deletes_events(world, admin_user, path, method, status):
    client = Client()
    client.force_login(admin_user)
    before = log_fingerprint()
    body = {"event_type": "x.Y", "version": "9", "event_data": "{}", "post": "yes", "_save": "1"}
    response = getattr(client, method)(path.format(**world), body)
    assert response.status_code == status
    assert b'name="_save"' not in response.content
    assert log_fingerprint() == before


@pytest.mark.parametrize("confirmed", [False, True])
def test_the_event_list_has_no_bulk_delete(world, admin_user, confirmed):
    client = Client()
    client.force_login(admin_user)
    before = log_fingerprint()
    body = {"action": "delete_selected", "_selected_action": list(
        Event.objects.values_list("pk", flat=True)), "index": "0"}  # fmt: skip
    if confirmed:
        body["post"] = "yes"
    response = client.post(EVENTS, body)
    assert response.status_code == 200  # the list again: there is no action to run
    assert b'name="action"' not in response.content
    assert b"Successfully deleted" not in response.content
    assert log_fingerprint() == before


# (b) Production settings refuse to start without a secret key, in one line.


def manage_check(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_DEBUG": "0"}, "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG=0"),
        ({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY must be set"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG must be 1 or 0, not 'maybe'"),
    ],
)
def test_production_refuses_to_start_without_its_settings_in_one_line(env, message):
    result = manage_check(env)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout == ""


# (c) Error pages show no stack trace, no file path, no exception text: HTML and API JSON.

SECRET = 'RuntimeError in File "/work/main/bankdemo/secret.py", line 7'


def assert_nothing_leaks(response) -> None:
    body = response.content.decode()
    for leak in ("Traceback", 'File "', ".py", str(ROOT), "RuntimeError", "secret"):
        assert leak not in body, f"{leak!r} in the {response.status_code} page"


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    client.force_login(User.objects.create_user("root", is_staff=True, is_superuser=True))
    return client


def broken(*args, **kwargs):
    raise RuntimeError(SECRET)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/no/such/page/", "/admin/no/such/page/"])
def test_a_404_page_is_plain(production, path):
    response = production.get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert_nothing_leaks(response)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "detail"),
    [("/api/no/such/endpoint/", "no such endpoint"), ("/api/accounts/nope/", "no account")],
)
def test_an_api_404_is_json(production, path, detail):
    response = production.get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert detail in response.json()["detail"]
    assert_nothing_leaks(response)


@pytest.mark.django_db
def test_a_500_page_is_plain(production, monkeypatch):
    monkeypatch.setattr(views, "projection_statuses", broken)
    response = production.get("/")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    assert "Server Error" in response.content.decode()
    assert_nothing_leaks(response)


@pytest.mark.django_db
def test_an_api_500_is_json(production, monkeypatch):
    monkeypatch.setattr(services, "account_open", broken)
    response = production.post(
        "/api/accounts/", {"owner": "Ada", "currency": "EUR"}, content_type="application/json"
    )
    assert response.status_code == 500
    assert response.json()["code"] == "server_error"
    assert_nothing_leaks(response)
