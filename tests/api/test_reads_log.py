"""The log reads: the global event log, projection status and the transfer read model.

These read the log as a log reader does, so on PostgreSQL they commit for real (`log_db`).
"""

import threading
import uuid

import pytest
from django.db import connections, transaction

from bankdemo import services
from eventsourcing_app.core.context import metadata_context
from eventsourcing_app.models import Event
from eventsourcing_app.wiring import get_event_store
from tests.api.test_reads_accounts import POSITION, account, client_in
from tests.helpers import requires_postgresql

pytestmark = pytest.mark.usefixtures("log_db")


@pytest.fixture
def auditor_api():
    return client_in("auditors", "log-auditor")


def positions(events: list[dict]) -> list[tuple[int, int]]:
    return [tuple(int(part) for part in event["position"].split("-")) for event in events]


def read_all(client, url: str) -> tuple[list[dict], int]:
    """Follow `next` links from `url`; return every event and the number of pages."""
    events, pages = [], 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        events += response.json()["results"]
        url, pages = response.json()["next"], pages + 1
    return events, pages


def test_the_log_in_position_order_in_keyset_pages(auditor_api):
    first = account("Ada", "EUR", "10.00")
    second = account("Bob", "USD", "5.00", "-1.00")
    everything = auditor_api.get("/api/events/").json()
    assert everything["next"] is None
    assert len(everything["results"]) == 5
    assert positions(everything["results"]) == sorted(positions(everything["results"]))
    assert [e["aggregate_id"] for e in everything["results"]] == [str(first)] * 2 + [
        str(second)
    ] * 3
    assert all(POSITION.match(e["position"]) for e in everything["results"])

    paged, pages = read_all(auditor_api, "/api/events/?limit=2")
    assert pages == 3
    assert [e["position"] for e in paged] == [e["position"] for e in everything["results"]]

    after = everything["results"][1]["position"]
    rest = auditor_api.get(f"/api/events/?after={after}").json()["results"]
    assert [e["position"] for e in rest] == [e["position"] for e in everything["results"][2:]]


def test_a_cursor_resumes_after_new_appends_without_skips_or_repeats(auditor_api):
    account("Ada", "EUR", "10.00")
    page = auditor_api.get("/api/events/?limit=1").json()
    assert page["next"] is not None
    account("Bob", "EUR")
    rest, _ = read_all(auditor_api, page["next"])
    seen = page["results"] + rest
    stored = [f"{e.transaction_id}-{e.id}" for e in Event.objects.order_by("transaction_id", "id")]
    assert [e["position"] for e in seen] == stored


@requires_postgresql
def test_a_cursor_never_passes_an_event_that_commits_late(auditor_api):
    account("Ada", "EUR")
    appended, release, done = threading.Event(), threading.Event(), threading.Event()
    late = {}

    def slow_writer():
        try:
            with transaction.atomic():
                late["id"] = account("Slow", "EUR")
                appended.set()
                release.wait(10)
        finally:
            connections.close_all()
            done.set()

    writer = threading.Thread(target=slow_writer, daemon=True)
    writer.start()
    try:
        assert appended.wait(10)
        quick = account("Quick", "EUR")  # a later transaction, committed first
        first = auditor_api.get("/api/events/").json()["results"]
        assert [e["aggregate_id"] for e in first] == [first[0]["aggregate_id"]]
    finally:
        release.set()
        assert done.wait(10)
    rest = auditor_api.get(f"/api/events/?after={first[-1]['position']}").json()["results"]
    assert [e["aggregate_id"] for e in rest] == [str(late["id"]), str(quick)]


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ("aggregate_type=bank.Account", 4),
        ("aggregate_type=bank.Transfer", 1),
        ("event_type=bank.MoneyDeposited", 2),
        ("event_type=bank.MoneyDeposited&aggregate_type=bank.Transfer", 0),
        ("correlation_id=reads-log-1", 2),
        ("correlation_id=nobody", 0),
    ],
)
def test_filters_narrow_the_log(auditor_api, query, count):
    with metadata_context(correlation_id="reads-log-1"):
        source = account("Ada", "EUR", "10.00")
    destination = account("Bob", "EUR", "1.00")
    services.transfer_request(source_id=source, destination_id=destination, amount="1.00")
    events = auditor_api.get(f"/api/events/?{query}").json()["results"]
    assert len(events) == count
    by_account = auditor_api.get(f"/api/events/?aggregate_id={destination}").json()["results"]
    assert [(e["aggregate_id"], e["version"]) for e in by_account] == [
        (str(destination), 1),
        (str(destination), 2),
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("aggregate_id=nope", "aggregate_id"),
        ("after=42", "after"),
        ("after=x-y", "after"),
        ("after=-1-5", "after"),
        (f"after=0-{2**63}", "after"),
        ("limit=0", "limit"),
        ("limit=1.5", "limit"),
        ("limit=+5", "limit"),
        ("aggregate_id=", "aggregate_id"),
    ],
)
def test_malformed_log_queries_are_400_naming_the_parameter(auditor_api, query, field):
    response = auditor_api.get(f"/api/events/?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert list(response.json()["fields"]) == [field]


def test_a_large_limit_is_capped(auditor_api):
    account("Ada", "EUR", *["1.00"] * 3)
    assert len(auditor_api.get("/api/events/?limit=100000").json()["results"]) == 4


def test_projections_show_position_lag_and_status(auditor_api):
    source, destination = account("Ada", "EUR", "10.00"), account("Bob", "EUR")
    services.transfer_request(source_id=source, destination_id=destination, amount="3.00")
    head = str(get_event_store().head())
    response = auditor_api.get("/api/projections/")
    assert response.status_code == 200
    statuses = {row["name"]: row for row in response.json()}
    balances, transfers = statuses["bank.account_balances"], statuses["bank.transfers"]
    assert (balances["inline"], balances["status"], balances["position"]) == (True, "inline", head)
    assert balances["events_behind"] == 0
    assert (transfers["inline"], transfers["status"], transfers["head"]) == (
        False,
        "not started",
        head,
    )
    assert transfers["events_behind"] == 4
    assert transfers["behind_capped"] is False

    services.settle_transfers()
    settled = {row["name"]: row for row in auditor_api.get("/api/projections/").json()}
    assert settled["bank.transfers"]["status"] == "ok"
    assert settled["bank.transfers"]["events_behind"] == 0
    assert settled["bank.transfers"]["position"] == str(get_event_store().head())
    assert settled["bank.daily_totals"]["events_behind"] > 0


def test_a_transfer_from_processing_to_completed(auditor_api):
    source, destination = account("Ada", "EUR", "50.00"), account("Bob", "EUR")
    transfer, _ = services.transfer_request(
        source_id=source, destination_id=destination, amount="30.00"
    )
    url = f"/api/transfers/{transfer.id}/"

    pending = auditor_api.get(url)
    assert pending.status_code == 200
    assert pending.json()["status"] == "processing"
    assert (pending.json()["amount"], pending.json()["source_id"]) == ("30.00", str(source))
    assert pending.json()["read_model"]["events_behind"] > 0
    assert pending["X-Read-Model-Position"] == "0-0"

    services.settle_transfers()
    done = auditor_api.get(url)
    assert done.status_code == 200
    body = done.json()
    assert (body["status"], body["amount"], body["currency"]) == ("completed", "30.00", "EUR")
    assert (body["destination_id"], body["refunded"], body["failure_code"]) == (
        str(destination),
        False,
        "",
    )
    assert body["requested_at"] <= body["updated_at"]
    assert body["read_model"]["events_behind"] == 0
    assert done["X-Read-Model-Position"] == str(get_event_store().head())
    assert done["X-Read-Model-Position"] == body["read_model"]["position"]


def test_a_failed_transfer_says_why(auditor_api):
    source, destination = account("Ada", "EUR", "5.00"), account("Bob", "EUR")
    transfer, _ = services.transfer_request(
        source_id=source, destination_id=destination, amount="30.00"
    )
    services.settle_transfers()
    body = auditor_api.get(f"/api/transfers/{transfer.id}/").json()
    assert (body["status"], body["failure_code"], body["refunded"]) == (
        "failed",
        "insufficient_funds",
        False,
    )
    assert body["failure_reason"]


@pytest.mark.parametrize("transfer_id", [str(uuid.uuid4()), "nope", "account"])
def test_unknown_or_malformed_transfers_are_404(auditor_api, transfer_id):
    if transfer_id == "account":  # an account's id names no transfer
        transfer_id = str(account("Ada", "EUR"))
    response = auditor_api.get(f"/api/transfers/{transfer_id}/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
