"""Who and why through the API: the username beside the user's id, a command's reason, and
closing only with a reason; the events' representations show both."""

import pytest
import yaml
from django.contrib.auth.models import User
from django.core.management import call_command

from bankdemo import services
from eventsourcing_app.models import Event

pytestmark = pytest.mark.django_db


def opened(client, **body) -> str:
    response = client.post(
        "/api/accounts/", {"owner": "Ada", "currency": "EUR", **body}, format="json"
    )
    assert response.status_code == 201
    return response.json()["id"]


def last_event(aggregate_id) -> Event:
    return Event.objects.filter(aggregate_id=aggregate_id).order_by("-version").first()


def test_every_command_records_its_reason_and_who_by_name_and_id(teller):
    teller_user = User.objects.get(username="teller")
    account = opened(teller, reason="walk-in customer")
    assert last_event(account).metadata["reason"] == "walk-in customer"
    for path, body in [
        ("deposit", {"amount": "5.00", "reason": "cash at the counter"}),
        ("withdraw", {"amount": "5.00", "reason": "  rent  "}),
        ("close", {"reason": "customer moved abroad"}),
    ]:
        response = teller.post(f"/api/accounts/{account}/{path}/", body, format="json")
        assert response.status_code == 200, response.json()
        metadata = last_event(account).metadata
        assert metadata["reason"] == body["reason"].strip()
        assert (metadata["user_id"], metadata["username"]) == (str(teller_user.pk), "teller")


@pytest.mark.parametrize("reason", ["", " ", None])
def test_a_reason_is_optional_and_a_blank_one_records_none(teller, reason):
    account = opened(teller)
    body = {"amount": "1.00"} if reason is None else {"amount": "1.00", "reason": reason}
    response = teller.post(f"/api/accounts/{account}/deposit/", body, format="json")
    assert response.status_code == 200
    assert "reason" not in last_event(account).metadata
    assert last_event(account).metadata["username"] == "teller"


def test_a_reason_of_500_characters_is_taken_and_501_refused(teller):
    account = opened(teller)
    longest = "é" * 500
    ok = teller.post(
        f"/api/accounts/{account}/deposit/", {"amount": "1.00", "reason": longest}, format="json"
    )
    assert ok.status_code == 200
    assert last_event(account).metadata["reason"] == longest
    events = Event.objects.count()
    refused = teller.post(
        f"/api/accounts/{account}/deposit/",
        {"amount": "1.00", "reason": longest + "é"},
        format="json",
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid"
    assert "reason" in refused.json()["fields"]
    assert Event.objects.count() == events


@pytest.mark.parametrize("body", [None, {}, {"reason": ""}, {"reason": "\t \u200b"}])
def test_closing_without_a_reason_is_422_reason_required(teller, body):
    account = opened(teller)
    events = Event.objects.count()
    response = teller.post(f"/api/accounts/{account}/close/", body, format="json")
    assert response.status_code == 422
    assert response.json()["code"] == "reason_required"
    assert Event.objects.count() == events
    assert teller.get(f"/api/accounts/{account}/").json()["status"] == "open"


def test_the_service_refuses_a_close_without_a_reason_too(teller):
    account = services.account_open(owner="Ada", currency="EUR")[0]
    with pytest.raises(services.ReasonRequired):
        services.account_close(account_id=account.id, reason="  ")


def test_the_username_is_the_one_at_the_time_not_after_a_rename(teller, auditor):
    account = opened(teller)
    User.objects.filter(username="teller").update(username="teller-renamed")
    events = auditor.get(f"/api/accounts/{account}/events/").json()["results"]
    assert events[0]["metadata"]["username"] == "teller"


@pytest.mark.usefixtures("log_db")  # the saga reads committed events on PostgreSQL
def test_a_transfer_and_the_saga_steps_carry_its_reason_and_user(teller, auditor):
    source, destination = opened(teller), opened(teller)
    teller.post(f"/api/accounts/{source}/deposit/", {"amount": "50.00"}, format="json")
    response = teller.post(
        "/api/transfers/",
        {"source_id": source, "destination_id": destination, "amount": "20.00",
         "reason": "monthly savings"},
        format="json",
        headers={"X-Correlation-ID": "savings-1"},
    )  # fmt: skip
    assert response.status_code == 202
    services.settle_transfers()
    trail = list(Event.objects.for_correlation("savings-1").order_by("transaction_id", "id"))
    assert [e.event_type for e in trail] == [
        "bank.TransferRequested",
        "bank.MoneyWithdrawn",
        "bank.TransferDebited",
        "bank.MoneyDeposited",
        "bank.TransferCompleted",
    ]
    assert {e.metadata["reason"] for e in trail} == {"monthly savings"}
    assert {e.metadata["username"] for e in trail} == {"teller"}
    assert trail[1].metadata["causation_id"] == f"event:{trail[0].id}"
    log = auditor.get("/api/events/", {"correlation_id": "savings-1"}).json()["results"]
    assert {(e["metadata"]["username"], e["metadata"]["reason"]) for e in log} == {
        ("teller", "monthly savings")
    }


def test_the_event_representations_show_username_and_reason_or_null(teller, auditor):
    account = opened(teller)
    teller.post(
        f"/api/accounts/{account}/deposit/", {"amount": "2.00", "reason": "gift"}, format="json"
    )
    services.account_deposit(account_id=account, amount="1.00")  # no request: nobody, no reason
    events = auditor.get(f"/api/accounts/{account}/events/").json()["results"]
    assert [(e["metadata"]["username"], e["metadata"]["reason"]) for e in events] == [
        ("teller", None),
        ("teller", "gift"),
        (None, None),
    ]


@pytest.fixture(scope="module")
def schema(tmp_path_factory, django_db_blocker):
    target = tmp_path_factory.mktemp("schema") / "schema.yml"
    with django_db_blocker.unblock():
        call_command("spectacular", "--file", str(target), "--validate", "--fail-on-warn")
    return yaml.safe_load(target.read_text())


def request_schema(schema, path):
    body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]


def test_the_schema_documents_the_reason_and_reason_required(schema):
    for path in [
        "/api/accounts/",
        "/api/accounts/{account_id}/deposit/",
        "/api/accounts/{account_id}/withdraw/",
        "/api/transfers/",
    ]:
        body = request_schema(schema, path)
        reason = body["properties"]["reason"]
        assert max(choice["maxLength"] for choice in reason["oneOf"]) == 500  # or blank
        assert "reason" not in body.get("required", [])
    close = request_schema(schema, "/api/accounts/{account_id}/close/")
    assert close["required"] == ["reason"]
    assert close["properties"]["reason"]["maxLength"] == 500
    responses = schema["paths"]["/api/accounts/{account_id}/close/"]["post"]["responses"]
    assert "reason_required" in responses["422"]["description"]
    metadata = schema["components"]["schemas"]["EventMetadataOut"]["properties"]
    assert {"user_id", "username", "reason"} <= set(metadata)
