"""The command API: status codes, If-Match, Idempotency-Key, refusals, permissions."""

import json
import threading
import uuid
from decimal import Decimal

import pytest
from django.db import connections, transaction
from rest_framework.test import APIClient

from bankdemo import services
from bankdemo.api import commands
from bankdemo.domain import Refusal
from bankdemo.models import AccountBalance, IdempotencyKey
from eventsourcing_app.core.errors import ConcurrencyError
from eventsourcing_app.models import Event
from tests.api.conftest import staff
from tests.helpers import requires_postgresql

pytestmark = pytest.mark.django_db


def open_account(client, **body):
    payload = {"owner": "Ada", "currency": "EUR", **body}
    return client.post("/api/accounts/", payload, format="json")


def events_of(account_id) -> int:
    return Event.objects.filter(aggregate_id=account_id).count()


def test_open_deposit_withdraw_close(teller):
    opened = open_account(teller)
    assert opened.status_code == 201
    account_id = opened.json()["id"]
    assert opened["Location"] == f"/api/accounts/{account_id}/"
    assert opened["ETag"] == '"1"'
    deposit = teller.post(
        f"/api/accounts/{account_id}/deposit/", {"amount": "10.50"}, format="json"
    )
    assert deposit.status_code == 200
    assert deposit.json()["version"] == 2
    assert deposit.json()["balance"] == "10.50"
    assert deposit.json()["position"]
    withdraw = teller.post(
        f"/api/accounts/{account_id}/withdraw/", {"amount": "10.50"}, format="json"
    )
    assert (withdraw.status_code, withdraw["ETag"]) == (200, '"3"')
    close = teller.post(
        f"/api/accounts/{account_id}/close/", {"reason": "customer left"}, format="json"
    )
    assert close.status_code == 200
    assert AccountBalance.objects.get(account_id=account_id).status == "closed"


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("withdraw", {"amount": "1000.00"}, 422, "insufficient_funds"),
        ("deposit", {"amount": "1.001"}, 422, "invalid_amount"),
        ("deposit", {"amount": "0"}, 422, "invalid_amount"),
        ("deposit", {"amount": "-5"}, 400, "invalid"),
        ("deposit", {"amount": 5}, 400, "invalid"),
        ("deposit", {}, 400, "invalid"),
        ("close", {"reason": "moving abroad"}, 422, "balance_not_zero"),
        ("close", {}, 422, "reason_required"),
        ("close", {"reason": " \t\u200b"}, 422, "reason_required"),
        ("close", {"reason": None}, 422, "reason_required"),
        ("close", {"reason": "x" * 501}, 400, "invalid"),
        ("deposit", {"amount": "1.00", "reason": "x" * 501}, 400, "invalid"),
        ("deposit", {"amount": "1.00", "reason": "nul\x00"}, 400, "invalid"),
        ("deposit", {"amount": "1.00", "reason": 7}, 400, "invalid"),
    ],
)
def test_refusals_and_bad_input_are_json_and_write_nothing(teller, path, body, status, code):
    account_id = open_account(teller).json()["id"]
    teller.post(f"/api/accounts/{account_id}/deposit/", {"amount": "5.00"}, format="json")
    response = teller.post(f"/api/accounts/{account_id}/{path}/", body, format="json")
    assert response.status_code == status
    assert response.json()["code"] == code
    assert events_of(account_id) == 2


@pytest.mark.parametrize("media", ["multipart", "urlencoded"])
def test_a_blank_form_field_is_refused_not_defaulted(teller, media):
    body = {"owner": "Ada", "currency": "EUR", "overdraft_limit": ""}
    if media == "multipart":
        response = teller.post("/api/accounts/", body, format="multipart")
    else:
        form = "owner=Ada&currency=EUR&overdraft_limit="
        response = teller.post(
            "/api/accounts/", form, content_type="application/x-www-form-urlencoded"
        )
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["overdraft_limit"]
    assert Event.objects.count() == 0


def test_validation_errors_name_the_field(teller):
    response = open_account(teller, currency="XXX", owner="")
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"currency", "owner"}


@pytest.mark.parametrize("account_id", ["nope", str(uuid.uuid4()), "1' OR 1=1 --"])
def test_unknown_or_malformed_accounts_are_404(teller, account_id):
    response = teller.post(f"/api/accounts/{account_id}/deposit/", {"amount": "1"}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_malformed_json_is_400_not_500(teller):
    response = teller.post("/api/accounts/", "{not json", content_type="application/json")
    assert response.status_code == 400


def test_if_match_makes_a_command_conditional(teller):
    account_id = open_account(teller).json()["id"]
    ok = teller.post(
        f"/api/accounts/{account_id}/deposit/", {"amount": "1"}, format="json", HTTP_IF_MATCH='"1"'
    )
    assert ok.status_code == 200
    stale = teller.post(
        f"/api/accounts/{account_id}/deposit/", {"amount": "1"}, format="json", HTTP_IF_MATCH='"1"'
    )
    assert stale.status_code == 412
    assert (stale.json()["code"], stale.json()["current_version"]) == ("version_mismatch", 2)
    assert stale["ETag"] == '"2"'
    bad = teller.post(
        f"/api/accounts/{account_id}/deposit/", {"amount": "1"}, format="json", HTTP_IF_MATCH="two"
    )
    assert bad.status_code == 400
    assert events_of(account_id) == 2


def test_an_idempotency_key_replays_the_first_response_and_appends_nothing(teller):
    account_id = open_account(teller).json()["id"]

    def deposit(body, key="deposit-1"):
        return teller.post(
            f"/api/accounts/{account_id}/deposit/",
            json.dumps(body),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=key,
        )

    first = deposit({"amount": "7.00"})
    again = deposit({"amount": "7.00"})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert again["ETag"] == first["ETag"]
    assert events_of(account_id) == 2
    reused = deposit({"amount": "8.00"})
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
    assert events_of(account_id) == 2
    refused = deposit({"amount": "0"}, key="deposit-2")
    replayed_refusal = deposit({"amount": "0"}, key="deposit-2")
    assert refused.status_code == replayed_refusal.status_code == 422
    assert IdempotencyKey.objects.count() == 2
    assert deposit({"amount": "7.00"}, key="x" * 201).status_code == 400


def test_a_conflict_is_not_remembered_under_its_key_so_the_retry_can_succeed(teller, monkeypatch):
    account_id = open_account(teller).json()["id"]
    deposit = services.account_deposit
    raced = []

    def lose_the_first_race(**kwargs):
        if not raced:
            raced.append(True)
            raise ConcurrencyError(uuid.UUID(account_id), 1, 2)
        return deposit(**kwargs)

    monkeypatch.setattr(commands.Deposit, "service", staticmethod(lose_the_first_race))

    def post():
        return teller.post(f"/api/accounts/{account_id}/deposit/", {"amount": "3.00"},
                           format="json", HTTP_IDEMPOTENCY_KEY="retry-me")  # fmt: skip

    lost = post()
    assert lost.status_code == 409
    assert not IdempotencyKey.objects.filter(key="retry-me").exists()
    retried = post()
    assert retried.status_code == 200
    assert "Idempotent-Replayed" not in retried
    assert events_of(account_id) == 2
    assert post()["Idempotent-Replayed"] == "true"  # the success is remembered
    assert events_of(account_id) == 2


@pytest.mark.parametrize("refused", [True, False], ids=["refusal", "success"])
def test_a_command_whose_transaction_was_lost_records_no_key_and_claims_nothing(
    teller, monkeypatch, refused
):
    """Undoing a savepoint on a cut connection leaves the request's transaction unable to
    commit (Django's `needs_rollback`): a refusal is still answered, a success is not (503),
    no key is recorded and no event stands, and never a 500."""
    account_id = open_account(teller).json()["id"]
    deposit = services.account_deposit

    def cut_while_unwinding(**kwargs):
        if refused:
            transaction.set_rollback(True)
            raise Refusal("refused as the connection was cut")
        result = deposit(**kwargs)
        transaction.set_rollback(True)
        return result

    monkeypatch.setattr(commands.Deposit, "service", staticmethod(cut_while_unwinding))
    answered = teller.post(f"/api/accounts/{account_id}/deposit/", {"amount": "3.00"},
                           format="json", HTTP_IDEMPOTENCY_KEY="lost")  # fmt: skip
    assert answered.status_code == (422 if refused else 503)
    assert answered.json()["code"] == ("refused" if refused else "database_unavailable")
    assert not IdempotencyKey.objects.filter(key="lost").exists()
    assert events_of(account_id) == 1


def test_transfers_are_accepted_and_settled_by_the_saga(teller):
    source = open_account(teller).json()["id"]
    destination = open_account(teller, owner="Bob").json()["id"]
    teller.post(f"/api/accounts/{source}/deposit/", {"amount": "50.00"}, format="json")
    response = teller.post(
        "/api/transfers/",
        {"source_id": source, "destination_id": destination, "amount": "20.00"},
        format="json",
    )
    assert response.status_code == 202
    assert response["Location"] == f"/api/transfers/{response.json()['id']}/"
    missing = teller.post(
        "/api/transfers/",
        {"source_id": source, "destination_id": str(uuid.uuid4()), "amount": "1.00"},
        format="json",
    )
    assert missing.status_code == 404
    same = teller.post(
        "/api/transfers/",
        {"source_id": source, "destination_id": source, "amount": "1.00"},
        format="json",
    )
    assert (same.status_code, same.json()["code"]) == (422, "same_account")


def test_who_may_do_what(teller, auditor, anonymous):
    account_id = open_account(teller).json()["id"]
    assert open_account(anonymous).status_code == 401
    forbidden = auditor.post(f"/api/accounts/{account_id}/deposit/", {"amount": "1"}, format="json")
    assert forbidden.status_code == 403
    outsider = APIClient()
    outsider.force_authenticate(staff("outsider", None))
    assert open_account(outsider).status_code == 403
    assert events_of(account_id) == 1


def test_a_token_authenticates(db):
    staff("token-teller", "tellers")
    client = APIClient()
    token = client.post(
        "/api/auth/token/",
        {"username": "token-teller", "password": "token-teller-password"},
        format="json",
    ).json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert open_account(client).status_code == 201
    wrong = APIClient().post(
        "/api/auth/token/", {"username": "token-teller", "password": "no"}, format="json"
    )
    assert wrong.status_code == 400


@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_concurrent_deposits_without_if_match_all_land(db):
    user = staff("busy-teller", "tellers")
    account, _ = services.account_open(owner="Ada", currency="EUR")
    writers, deposits_each = 4, 10
    start = threading.Barrier(writers)
    failures = []

    def deposit():
        client = APIClient()
        client.force_authenticate(user)
        try:
            start.wait(10)
            for _ in range(deposits_each):
                response = client.post(
                    f"/api/accounts/{account.id}/deposit/", {"amount": "1.00"}, format="json"
                )
                if response.status_code != 200:
                    failures.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deposit) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    loaded = services.accounts().load(account.id)
    assert loaded.balance == Decimal(writers * deposits_each)
    versions = list(
        Event.objects.filter(aggregate_id=account.id)
        .order_by("version")
        .values_list("version", flat=True)
    )
    assert versions == list(range(1, writers * deposits_each + 2))
    assert AccountBalance.objects.get(account_id=account.id).balance == Decimal(
        writers * deposits_each
    )


@pytest.mark.parametrize("owner", ["\u200b\u200b\u200b", "\u2060\ufeff", "\u200e \u200f"])
def test_an_owner_made_of_invisible_characters_is_a_blank_field(teller, owner):
    response = teller.post("/api/accounts/", {"owner": owner, "currency": "EUR"}, format="json")
    assert response.status_code == 400
    assert "owner" in response.json()["fields"]
    assert not AccountBalance.objects.exists()
