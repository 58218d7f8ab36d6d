"""The OpenAPI schema documents every endpoint and its errors; its docs page needs no CDN."""

import re

import pytest
import yaml
from django.core.management import call_command

pytestmark = pytest.mark.django_db

PATHS = [
    "/api/accounts/",
    "/api/accounts/{account_id}/",
    "/api/accounts/{account_id}/deposit/",
    "/api/accounts/{account_id}/withdraw/",
    "/api/accounts/{account_id}/close/",
    "/api/accounts/{account_id}/events/",
    "/api/accounts/{account_id}/state/",
    "/api/transfers/",
    "/api/transfers/{transfer_id}/",
    "/api/events/",
    "/api/projections/",
    "/api/ledger/digest/",
    "/api/ledger/key/",
    "/api/ledger/inclusion/",
    "/api/ledger/consistency/",
    "/api/auth/token/",
]


@pytest.fixture(scope="module")
def schema(tmp_path_factory, django_db_blocker):
    target = tmp_path_factory.mktemp("schema") / "schema.yml"
    with django_db_blocker.unblock():
        call_command("spectacular", "--file", str(target), "--validate", "--fail-on-warn")
    return yaml.safe_load(target.read_text())


def test_every_endpoint_is_in_the_schema(schema):
    assert set(PATHS) <= set(schema["paths"])


def test_commands_document_their_headers_and_errors(schema):
    deposit = schema["paths"]["/api/accounts/{account_id}/deposit/"]["post"]
    headers = {p["name"] for p in deposit["parameters"] if p["in"] == "header"}
    assert {"If-Match", "Idempotency-Key"} <= headers
    assert {"200", "400", "401", "403", "404", "409", "412", "422"} <= set(deposit["responses"])


def test_the_docs_page_loads_nothing_from_elsewhere(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.content.decode())
    assert sources
    assert all(not s.startswith(("http://", "https://", "//")) for s in sources)
