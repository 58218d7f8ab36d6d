"""Password guessing and floods: the token endpoint and commands are throttled (429 with
Retry-After), and the admin login locks a username out after repeated failures."""

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from tests.api.conftest import staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(settings):
    """Set the throttle rates for the test, on an empty throttle cache."""

    def set_rates(**scopes: str) -> None:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": scopes}
        cache.clear()

    yield set_rates
    cache.clear()


def test_token_requests_past_the_limit_get_429_even_with_the_right_password(rates):
    rates(token="5/minute", commands="1000/minute")
    staff("guessed", "tellers")
    client = APIClient()
    for attempt in range(5):
        wrong = client.post("/api/auth/token/", {"username": "guessed", "password": f"no{attempt}"})
        assert wrong.status_code == 400
    throttled = client.post(
        "/api/auth/token/", {"username": "guessed", "password": "guessed-password"}
    )
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "throttled"
    assert 0 < int(throttled["Retry-After"]) <= 60


def test_commands_are_throttled_per_user(rates):
    rates(token="1000/minute", commands="3/minute")
    busy, other = APIClient(), APIClient()
    busy.force_authenticate(staff("busy-teller", "tellers"))
    other.force_authenticate(staff("other-teller", "tellers"))
    body = {"owner": "Ada", "currency": "EUR"}
    assert [busy.post("/api/accounts/", body, format="json").status_code for _ in range(3)] == [
        201
    ] * 3
    refused = busy.post("/api/accounts/", body, format="json")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert busy.get("/api/accounts/").status_code == 200  # reads are not throttled
    assert other.post("/api/accounts/", body, format="json").status_code == 201


def test_the_admin_login_locks_a_username_out_after_repeated_failures(settings):
    settings.AXES_FAILURE_LIMIT = 5
    User.objects.create_superuser("boss", password="the-right-one")
    client = Client()
    for attempt in range(5):
        page = client.post("/admin/login/", {"username": "boss", "password": f"guess{attempt}"})
        assert page.status_code in (200, 429)
    locked = client.post("/admin/login/", {"username": "boss", "password": "the-right-one"})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    elsewhere = Client(REMOTE_ADDR="10.9.8.7")  # the username is locked from every address
    assert (
        elsewhere.post(
            "/admin/login/", {"username": "boss", "password": "the-right-one"}
        ).status_code
        == 429
    )


def test_the_admin_login_still_works_below_the_limit(settings):
    settings.AXES_FAILURE_LIMIT = 5
    User.objects.create_superuser("boss", password="the-right-one")
    client = Client()
    for attempt in range(3):
        client.post("/admin/login/", {"username": "boss", "password": f"guess{attempt}"})
    page = client.post("/admin/login/", {"username": "boss", "password": "the-right-one"})
    assert page.status_code == 302
    assert client.session["_auth_user_id"]


def test_the_schema_documents_429_for_the_token_endpoint_and_commands():
    client = APIClient()
    schema = client.get("/api/schema/?format=json").json()
    assert "429" in schema["paths"]["/api/auth/token/"]["post"]["responses"]
    assert "429" in schema["paths"]["/api/accounts/"]["post"]["responses"]
    assert "429" in schema["paths"]["/api/accounts/{account_id}/deposit/"]["post"]["responses"]
    assert "429" in schema["paths"]["/api/transfers/"]["post"]["responses"]
