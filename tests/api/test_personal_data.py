"""Personal data in the API's events: an account's owner comes opened, and, once the account's
subject is forgotten, as erased with the record of who erased it, when and why; a page looks
its keys up once, and a key that cannot be opened is said in the event, never a 500.

These read the log as a log reader does, so on PostgreSQL they commit for real (`log_db`).
"""

import base64
import os

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.dateparse import parse_datetime

from eventsourcing_app.core.personal import ENVELOPE, ERASED
from eventsourcing_app.models import PersonalDataKey
from eventsourcing_app.privacy import keyring
from eventsourcing_app.privacy.erasure import forget_subject
from tests.api.test_reads_accounts import account, client_in
from tests.api.test_schema import schema  # noqa: F401  (the fixture)

pytestmark = pytest.mark.usefixtures("log_db")

OWNER = "Wilhelmina Pettigrew-Stroud"
REASON = "erasure request 2024-117"


@pytest.fixture
def auditor_api():
    return client_in("auditors", "personal-auditor")


def opening(client, account_id) -> tuple[dict, dict, str]:
    """The account's opening event from its events and from the log, and both bodies."""
    own = client.get(f"/api/accounts/{account_id}/events/")
    log = client.get("/api/events/", {"aggregate_id": str(account_id)})
    assert (own.status_code, log.status_code) == (200, 200)
    bodies = own.content.decode() + log.content.decode()
    return own.json()["results"][0], log.json()["results"][0], bodies


def test_the_owner_comes_opened_and_nothing_is_erased(auditor_api):
    account_id = account(OWNER, "EUR", "10.00")
    for event in opening(auditor_api, account_id)[:2]:
        assert event["event_type"] == "bank.AccountOpened"
        assert event["data"]["owner"] == OWNER
        assert event["data"]["currency"] == "EUR"
        assert event["erased"] is None
        assert event["personal_data_error"] is None
    deposit = auditor_api.get(f"/api/accounts/{account_id}/events/").json()["results"][1]
    assert (deposit["erased"], deposit["personal_data_error"]) == (None, None)


def test_after_the_erasure_the_owner_reads_as_erased_with_who_when_and_why(auditor_api):
    account_id = account(OWNER, "EUR", "10.00")
    neighbour = account("Bartholomew Ingle", "EUR")
    forget_subject(str(account_id), reason=REASON, by="privacy")
    key = PersonalDataKey.objects.get(subject=str(account_id))

    own, log, bodies = opening(auditor_api, account_id)
    assert OWNER not in bodies
    for event in (own, log):
        assert event["data"]["owner"] == ERASED
        assert event["erased"]["by"] == "privacy"
        assert event["erased"]["reason"] == REASON
        assert parse_datetime(event["erased"]["at"]) == key.forgotten_at
    other = opening(auditor_api, neighbour)[0]
    assert (other["data"]["owner"], other["erased"]) == ("Bartholomew Ingle", None)
    deposit = auditor_api.get(f"/api/accounts/{account_id}/events/").json()["results"][1]
    assert deposit["erased"] is None  # a deposit holds no personal data


def test_a_page_of_the_log_looks_its_keys_up_once(auditor_api):
    def openings() -> tuple[int, list[dict]]:
        with CaptureQueriesContext(connection) as captured:
            body = auditor_api.get("/api/events/", {"event_type": "bank.AccountOpened"}).json()
        return len(captured), body["results"]

    first = account("Owner 0", "EUR")
    few, shown = openings()
    assert [event["data"]["owner"] for event in shown] == ["Owner 0"]
    for number in range(1, 20):
        account(f"Owner {number}", "EUR")
    forget_subject(str(first), reason=REASON, by="privacy")
    many, shown = openings()
    assert [event["data"]["owner"] for event in shown] == [ERASED] + [
        f"Owner {number}" for number in range(1, 20)
    ]
    assert many == few


def test_a_key_that_cannot_be_opened_is_said_in_the_event(auditor_api, monkeypatch):
    account_id = account(OWNER, "EUR")
    monkeypatch.setenv("PERSONAL_DATA_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setattr(keyring, "_unwrapped", None)
    own, log, bodies = opening(auditor_api, account_id)
    assert OWNER not in bodies
    for event in (own, log):
        assert "master key" in event["personal_data_error"]
        assert ENVELOPE in event["data"]["owner"]  # as stored: sealed
        assert event["erased"] is None


def test_the_schema_describes_the_erasure(schema):  # noqa: F811
    event = schema["components"]["schemas"]["EventOut"]["properties"]
    assert {"data", "erased", "personal_data_error"} <= set(event)
    erased = schema["components"]["schemas"]["ErasedOut"]["properties"]
    assert set(erased) == {"at", "by", "reason"}
