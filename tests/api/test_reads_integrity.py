"""Replays refuse forged streams: an account's state, a transfer not yet in its read model.

Rows are altered behind the append-only triggers, as tests/store/test_tamper.py does. Sealing
reads the log as a log reader does, so on PostgreSQL these tests commit (`log_db`) and switch
the triggers back on themselves; on SQLite the test's transaction restores them.
"""

import contextlib
import json
import uuid

import pytest
from django.db import connection

from bankdemo import services
from eventsourcing_app.core.verification import recomputed_hash, verify_chains
from eventsourcing_app.ledger.sealer import seal_now
from eventsourcing_app.models import Event
from eventsourcing_app.wiring import get_event_store, get_recorder
from tests.api.test_reads_accounts import client_in
from tests.helpers import on_postgresql

pytestmark = pytest.mark.usefixtures("log_db")

ALTERED = "its content does not match its hash: the row was altered"


@pytest.fixture
def auditor_api():
    return client_in("auditors", "integrity-auditor")


@pytest.fixture
def account() -> uuid.UUID:
    """An account of four events: opened, 10.00 and 5.00 deposited, 2.50 withdrawn."""
    opened, _ = services.account_open(owner="Ada", currency="EUR")
    services.account_deposit(account_id=opened.id, amount="10.00")
    services.account_deposit(account_id=opened.id, amount="5.00")
    services.account_withdraw(account_id=opened.id, amount="2.50")
    return opened.id


@pytest.fixture
def bystander() -> uuid.UUID:
    opened, _ = services.account_open(owner="Bob", currency="EUR")
    services.account_deposit(account_id=opened.id, amount="1.00")
    return opened.id


@contextlib.contextmanager
def events_unguarded():
    """The events table with its append-only triggers off, for the block."""
    with connection.cursor() as cursor:
        if on_postgresql():
            cursor.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
            try:
                yield cursor
            finally:
                cursor.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")
        else:
            cursor.execute("DROP TRIGGER events_no_update")
            cursor.execute("DROP TRIGGER events_no_delete")
            yield cursor


def event(aggregate_id: uuid.UUID, version: int) -> Event:
    return Event.objects.get(aggregate_id=aggregate_id, version=version)


def alter_amount(aggregate_id: uuid.UUID, version: int, amount: str) -> int:
    """Change an event's amount and nothing else: its hash no longer matches. Return its id."""
    victim = event(aggregate_id, version)
    with events_unguarded() as cursor:
        cursor.execute(
            "UPDATE events SET event_data = %s WHERE id = %s",
            [json.dumps({**victim.event_data, "amount": amount}), victim.pk],
        )
    return victim.pk


def rewrite_consistently(aggregate_id: uuid.UUID, version: int, amount: str) -> int:
    """Change an event's amount, then recompute its hash and every later one in the stream,
    so that the chain verifies again. Return the altered event's id."""
    stream = get_recorder().read_chains(None, 1000, aggregate_id)
    previous = None
    with events_unguarded() as cursor:
        for stored in stream:
            if stored.version < version:
                previous = stored.hash
                continue
            data = {**stored.data, "amount": amount} if stored.version == version else stored.data
            rehashed = recomputed_hash(stored, data=data, previous_hash=previous)
            cursor.execute(
                "UPDATE events SET event_data = %s, hash = %s, previous_hash = %s WHERE id = %s",
                [json.dumps(data), rehashed, previous, stored.id],
            )
            previous = rehashed
    return event(aggregate_id, version).pk


def state(client, account_id: uuid.UUID, **query):
    return client.get(f"/api/accounts/{account_id}/state/", query)


def integrity_broken(response, event_id: int, version: int) -> str:
    """Check a 409 integrity_broken naming the event; return its reason."""
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "integrity_broken"
    assert set(body) == {"code", "detail", "first_broken"}
    assert body["first_broken"]["event_id"] == event_id
    assert body["first_broken"]["version"] == version
    assert body["first_broken"]["reason"] in body["detail"]
    assert "balance" not in body
    return body["first_broken"]["reason"]


def test_an_intact_sealed_stream_replays(auditor_api, account):
    seal_now(get_event_store())
    answer = state(auditor_api, account)
    assert answer.status_code == 200
    assert (answer.json()["version"], answer.json()["balance"]) == (4, "12.50")


def test_an_altered_event_breaks_the_chain_and_the_state_is_refused(
    auditor_api, account, bystander
):
    victim = alter_amount(account, 2, "1000.00")
    reason = integrity_broken(state(auditor_api, account), victim, 2)
    assert reason == ALTERED
    # Whatever the version asked: the stream is not to be replayed, before or after the change.
    integrity_broken(state(auditor_api, account, version=1), victim, 2)
    integrity_broken(state(auditor_api, account, version=3), victim, 2)
    assert state(auditor_api, bystander).status_code == 200


def test_a_consistent_rewrite_of_a_sealed_stream_is_caught_by_the_ledger(
    auditor_api, account, bystander
):
    seal_now(get_event_store())
    victim = rewrite_consistently(account, 2, "1000.00")
    assert verify_chains(get_recorder(), aggregate_id=account).intact  # the chain alone holds
    reason = integrity_broken(state(auditor_api, account), victim, 2)
    assert "differs from the one sealed at leaf" in reason
    assert "rewritten" in reason
    assert state(auditor_api, bystander).status_code == 200


def test_a_removed_last_event_of_a_sealed_stream_is_caught(auditor_api, account):
    """No successor's link breaks, yet the ledger remembers the event was there."""
    seal_now(get_event_store())
    last = event(account, 4).pk
    with events_unguarded() as cursor:
        cursor.execute("DELETE FROM events WHERE id = %s", [last])
    reason = integrity_broken(state(auditor_api, account), last, 4)
    assert "now missing" in reason


def test_a_transfer_replayed_from_a_forged_stream_is_refused(auditor_api, account, bystander):
    """Until the read model has it, a transfer is rebuilt from its events: that is checked."""
    transfer, _ = services.transfer_request(
        source_id=account, destination_id=bystander, amount="3.00"
    )
    url = f"/api/transfers/{transfer.id}/"
    assert auditor_api.get(url).json()["status"] == "processing"  # rebuilt, not the read model
    victim = alter_amount(transfer.id, 1, "3000.00")
    integrity_broken(auditor_api.get(url), victim, 1)


def test_the_schema_documents_the_integrity_refusal(auditor_api):
    schema = auditor_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    paths = json.loads(schema.content)["paths"]
    for path in ("/api/accounts/{account_id}/state/", "/api/transfers/{transfer_id}/"):
        refusal = paths[path]["get"]["responses"]["409"]
        assert "integrity_broken" in refusal["description"]
        ref = refusal["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/IntegrityErrorOut")


def test_a_forged_snapshot_of_an_intact_stream_does_not_show_through(auditor_api, account):
    from bankdemo.domain import BankAccount
    from eventsourcing_app.models import Snapshot
    from eventsourcing_app.wiring import get_repository

    repository = get_repository(BankAccount)
    repository.write_snapshot(repository.load(account))
    snapshot = Snapshot.objects.get(aggregate_id=account, version=4)
    forged = json.loads(json.dumps(snapshot.state).replace("12.50", "999999.00"))
    assert forged != snapshot.state  # the forgery changed the balance
    Snapshot.objects.filter(pk=snapshot.pk).update(state=forged)
    answer = state(auditor_api, account)
    assert answer.status_code == 200
    assert answer.json()["balance"] == "12.50"
