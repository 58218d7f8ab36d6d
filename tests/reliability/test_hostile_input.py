"""Hostile input answers 4xx, never 500: deep JSON, oversized bodies, NUL characters.

Under /api/ the refusal is the documented JSON body (`code`, `detail`); in the admin a 400 page.
"""

import json
import uuid

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from tests.api.conftest import staff

DEEP = "[" * 100_000 + "]" * 100_000
COMMANDS = ["/api/accounts/", "/api/transfers/", f"/api/accounts/{uuid.uuid4()}/deposit/"]


@pytest.fixture
def production(settings):
    settings.DEBUG = False


def client_as(role: str | None) -> APIClient:
    client = APIClient(raise_request_exception=False)
    if role is not None:
        client.force_authenticate(staff(f"{role}-user", role))
    return client


@pytest.mark.django_db
@pytest.mark.usefixtures("production")
@pytest.mark.parametrize(
    ("role", "path"), [(None, "/api/auth/token/"), *(("tellers", path) for path in COMMANDS)]
)
def test_json_nested_too_deeply_is_a_400_with_the_error_body(role, path):
    response = client_as(role).post(path, DEEP, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert "nested too deeply" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.usefixtures("production")
@pytest.mark.parametrize(
    ("role", "path", "content_type"),
    [(None, "/api/auth/token/", "application/x-www-form-urlencoded"),
     (None, "/api/auth/token/", "application/json"),
     ("tellers", "/api/accounts/", "application/json")],
)  # fmt: skip
def test_a_body_over_the_limit_is_a_413_in_json(settings, role, path, content_type):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps({"owner": "x" * 20_000, "currency": "EUR"})
    if content_type != "application/json":
        body = "username=" + "x" * 20_000
    response = client_as(role).post(path, body, content_type=content_type)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "too_large"


def _list_filter_parameters() -> list[tuple[str, str]]:
    """Every registered admin's changelist with each of its filter parameters and its search."""
    found = []
    for model, model_admin in admin.site._registry.items():
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for list_filter in model_admin.list_filter:
            parameter = getattr(list_filter, "parameter_name", None) or list_filter
            found.append((url, f"{parameter}=%00"))
            found.append((url, f"{parameter}__exact=%00"))
        if model_admin.search_fields:
            found.append((url, "q=%00"))
    return found


@pytest.mark.django_db
@pytest.mark.usefixtures("production")
@pytest.mark.parametrize(("url", "query"), _list_filter_parameters())
def test_a_nul_in_any_admin_list_filter_is_a_400_page(url, query):
    client = Client(raise_request_exception=False)
    client.force_login(User.objects.create_superuser("root", password="x"))
    response = client.get(f"{url}?{query}")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
@pytest.mark.usefixtures("production")
@pytest.mark.parametrize("path", ["/admin/eventsourcing_app/event/correlation/%00/",
                                  "/admin/eventsourcing_app/event/correlation/a%00b/"])  # fmt: skip
def test_a_nul_in_the_correlation_page_is_a_400_page(path):
    client = Client(raise_request_exception=False)
    client.force_login(User.objects.create_superuser("root", password="x"))
    assert client.get(path).status_code == 400


@pytest.mark.django_db
@pytest.mark.usefixtures("production")
def test_a_nul_in_an_api_filter_is_a_400_with_the_error_body():
    response = client_as("auditors").get("/api/events/?event_type=%00")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
