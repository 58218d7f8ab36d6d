"""What auditors see of the ledger: the event page's entry and proof, and timelines, state and
comparisons that check the chain AND the ledger, so that a stream cut short or consistently
rewritten behind the triggers shows as broken, on the very event it concerns.

These tests commit on PostgreSQL (sealing reads the committed log): `tamper` switches the
append-only trigger off and on again around its statement there; on SQLite it drops the
triggers inside the test's transaction, which rolls back.
"""

import json
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from bankdemo import seeding
from bankdemo.domain import BankAccount
from eventsourcing_app.core.records import NO_STREAM
from eventsourcing_app.core.verification import recomputed_hash, verify_chains
from eventsourcing_app.ledger import digests, keys
from eventsourcing_app.ledger.sealer import Sealer, seal_now
from eventsourcing_app.models import Event
from eventsourcing_app.wiring import get_event_store, get_recorder, get_repository
from tests.audit.test_admin import EVENTS
from tests.helpers import deposits, new_id, on_postgresql
from tests.ledger.test_sealing import append_streams

pytestmark = pytest.mark.usefixtures("log_db")


@pytest.fixture
def account():
    """A bank account with a history of its own (a few other accounts beside it)."""
    seeding.seed_history(accounts=3, events=24, progress=lambda n: None)
    counts = {}
    for aggregate_id in Event.objects.filter(aggregate_type="bank.Account").values_list(
        "aggregate_id", flat=True
    ):
        counts[aggregate_id] = counts.get(aggregate_id, 0) + 1
    busiest = max(counts, key=counts.get)
    assert counts[busiest] >= 4
    return busiest


def tamper(statement: str, params: list) -> None:
    """Run a change behind the append-only triggers; PostgreSQL gets its trigger back at once."""
    with connection.cursor() as cursor:
        if on_postgresql():
            cursor.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
            try:
                cursor.execute(statement, params)
            finally:
                cursor.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")
        else:
            cursor.execute("DROP TRIGGER IF EXISTS events_no_update")
            cursor.execute("DROP TRIGGER IF EXISTS events_no_delete")
            cursor.execute(statement, params)


def rewrite_consistently(aggregate_id, version: int, data: dict) -> None:
    """Alter one event's data and recompute its hash and every later hash of its stream, so
    that the chain verifies again: only the ledger can tell."""
    previous = None
    for event in Event.objects.filter(aggregate_id=aggregate_id).order_by("version"):
        if event.version < version:
            previous = event.hash
            continue
        if event.version == version:
            event.event_data = data
        recomputed = recomputed_hash(event, previous_hash=previous)
        tamper(
            "UPDATE events SET event_data = %s, hash = %s, previous_hash = %s WHERE id = %s",
            [json.dumps(event.event_data), recomputed, previous, event.pk],
        )
        previous = recomputed


def event_page(client, event: Event) -> str:
    response = client.get(f"{EVENTS}{event.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def card(page: str, version: int) -> str:
    """The HTML of one event's card on a timeline."""
    start = page.index(f'id="v{version}"')
    start = page.rindex("<div", 0, start)
    end = page.find('<div class="es-card', start + 1)
    return page[start : end if end != -1 else len(page)]


def stream_events(aggregate_id) -> list[Event]:
    return list(Event.objects.filter(aggregate_id=aggregate_id).order_by("version"))


def test_the_event_page_shows_not_sealed_then_its_leaf_and_a_verified_proof(auditor, account):
    event = stream_events(account)[1]
    page = event_page(auditor, event)
    assert "not sealed into the ledger yet" in page
    assert "proof verified" not in page
    assert 'class="es-badge es-warn" id="proof"' in page

    digest = seal_now(get_event_store())
    index = list(Event.objects.order_by("transaction_id", "id").values_list("pk", flat=True))
    index = index.index(event.pk)
    page = event_page(auditor, event)
    assert f'<td id="leaf-index">{index}</td>' in page
    assert 'class="es-badge es-ok" id="proof">proof verified</span>' in page
    assert f"tree size {digest.tree_size}" in page
    assert digest.sealed_at in page
    assert digest.key_id in page
    assert digest.root_hash in page
    assert 'id="event-tamper">hash chain and ledger verified' in page


def test_a_leaf_no_digest_covers_yet_and_a_signature_that_does_not_verify(
    auditor, account, monkeypatch
):
    seal_now(get_event_store())
    [later] = append_streams(1, 1)
    stored = get_recorder().read_chains(None, 10, later)
    with transaction.atomic():
        Sealer().extend(stored)
    event = Event.objects.get(aggregate_id=later)
    page = event_page(auditor, event)
    assert "sealed, but no digest covers it yet" in page
    assert "proof verified" not in page

    other = digests.load_private_key(digests.generate_private_key_pem())
    monkeypatch.setattr(keys, "public_key", other.public_key)
    page = event_page(auditor, stream_events(account)[0])
    assert "the digest&#x27;s signature does not verify" in page
    assert 'class="es-badge es-bad" id="proof"' in page
    assert "proof verified" not in page


def test_a_consistent_rewrite_is_marked_on_its_card_its_page_and_the_badge(auditor, account):
    seal_now(get_event_store())
    events = stream_events(account)
    timeline = f"{EVENTS}timeline/{account}/"
    page = auditor.get(timeline).content.decode()
    assert "hash chain and ledger verified" in page
    assert f"{len(events)} of {len(events)} events sealed" in page
    assert "tampered" not in page

    victim = events[1]
    rewrite_consistently(account, 2, {**victim.event_data, "forged": True})
    assert verify_chains(get_recorder(), aggregate_id=account).intact  # the chain alone: fine

    page = auditor.get(timeline).content.decode()
    assert 'class="es-badge es-bad" id="tamper">integrity broken: ' in page
    assert f"event {victim.pk} ({account} v2)" in page
    assert "tampered" not in card(page, 1)
    for event in events[1:]:  # the altered event, and every later one whose hash was recomputed
        marked = card(page, event.version)
        assert "es-tampered" in marked
        assert ">tampered</span>" in marked
        assert "it was rewritten" in marked
    assert f'<a href="#v2">event {victim.pk} · v2</a>' in page

    page = event_page(auditor, Event.objects.get(pk=victim.pk))
    assert 'id="event-tamper">tampered</span>' in page
    assert "it was rewritten" in page
    assert "the event&#x27;s hash differs from its sealed leaf" in page
    assert "proof verified" not in page
    untouched = event_page(auditor, events[0])
    assert 'id="event-tamper">this event verifies, its stream does not' in untouched
    assert "proof verified" in untouched  # its own entry still holds

    state = auditor.get(f"{timeline}state/?at=3")
    assert state.status_code == 409
    assert "No state is shown" in state.content.decode()
    assert 'id="state"' not in state.content.decode()
    compare = auditor.get(f"{timeline}compare/?a=1&b=3")
    assert compare.status_code == 409
    assert "What changed" not in compare.content.decode()
    assert f"event {victim.pk} · v2" in compare.content.decode()


def test_a_stream_cut_short_names_its_missing_event(auditor, account):
    seal_now(get_event_store())
    events = stream_events(account)
    newest = events[-1]
    tamper("DELETE FROM events WHERE id = %s", [newest.pk])
    assert verify_chains(get_recorder(), aggregate_id=account).intact  # the chain alone: fine

    page = auditor.get(f"{EVENTS}timeline/{account}/").content.decode()
    assert 'id="tamper">integrity broken: ' in page
    badge = page[page.index('id="tamper"') : page.index("</span>", page.index('id="tamper"'))]
    assert f"event {newest.pk} ({account} v{newest.version})" in badge
    assert "now missing" in badge
    assert f'id="v{newest.version}"' not in page  # no card
    assert f"<strong>event {newest.pk} · v{newest.version}</strong>" in page
    assert auditor.get(f"{EVENTS}timeline/{account}/state/?at=1").status_code == 409


def test_a_stream_deleted_whole_after_sealing_still_has_a_timeline(auditor):
    [gone] = append_streams(1, 2)
    seal_now(get_event_store())
    tamper("DELETE FROM events WHERE aggregate_id = %s", [gone if on_postgresql() else gone.hex])
    response = auditor.get(f"{EVENTS}timeline/{gone}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "integrity broken" in page
    assert page.count("now missing") >= 2
    assert auditor.get(f"{EVENTS}timeline/{new_id()}/").status_code == 404


def test_pages_cost_the_same_queries_for_a_short_and_a_long_stream(auditor):
    store = get_event_store()
    short, long = new_id(), new_id()
    for aggregate_id, count in ((short, 2), (long, 60)):
        amounts = [f"{n}.00" for n in range(1, count + 1)]
        store.append(aggregate_id, deposits(*amounts), expected_version=NO_STREAM,
                     aggregate_type="ledger.Account")  # fmt: skip
    seal_now(store)
    counts = []
    for aggregate_id in (short, long):
        newest = Event.objects.filter(aggregate_id=aggregate_id).order_by("-version").first()
        with CaptureQueriesContext(connection) as timeline:
            assert auditor.get(f"{EVENTS}timeline/{aggregate_id}/").status_code == 200
        with CaptureQueriesContext(connection) as page:
            assert "proof verified" in event_page(auditor, newest)
        counts.append((len(timeline), len(page)))
    assert counts[0][0] == counts[1][0], counts
    # An inclusion path is fetched in one or two queries, by where the leaf sits in the tree.
    assert abs(counts[0][1] - counts[1][1]) <= 1, counts
    assert max(counts) <= (10, 16), counts


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("event_data", '"just a string"'),
        ("event_data", "[1, 2, 3]"),
        ("event_data", '{"amount": {"nested": [null]}}'),
        ("metadata", "[]"),
        ("metadata", '{"correlation_id": "has/a/slash", "user_id": 7}'),
    ],
)
def test_odd_rows_behind_the_triggers_never_give_a_server_error(auditor, account, column, value):
    seal_now(get_event_store())
    victim = stream_events(account)[1]
    tamper(f"UPDATE events SET {column} = %s WHERE id = %s", [value, victim.pk])
    timeline = f"{EVENTS}timeline/{account}/"
    response = auditor.get(timeline)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="es-badge es-bad" id="tamper"' in page
    assert "es-tampered" in card(page, 2)
    assert auditor.get(f"{EVENTS}{victim.pk}/change/").status_code == 200
    assert auditor.get(f"{timeline}state/?at=2").status_code == 409
    assert auditor.get(f"{timeline}compare/?a=1&b=2").status_code == 409
    assert auditor.get(EVENTS).status_code == 200


def test_odd_points_and_ids_never_give_a_server_error(auditor, account):
    timeline = f"{EVENTS}timeline/{account}/"
    odd = ("0", "99999999999999999999999999", "-1", "2026-13-45", "1" * 400, "²",
           "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00")  # fmt: skip
    for point in odd:
        assert auditor.get(f"{timeline}state/", {"at": point}).status_code == 200, point
        assert auditor.get(f"{timeline}compare/", {"a": "1", "b": point}).status_code == 200
    assert auditor.get(f"{EVENTS}99999999/change/").status_code == 302  # to the list
    assert auditor.get(f"{EVENTS}not-a-number/change/").status_code == 302
    assert auditor.get(f"{EVENTS}correlation/a/b/").status_code == 200


def test_state_is_replayed_from_the_verified_events_not_from_a_snapshot(auditor, account):
    repository = get_repository(BankAccount)
    aggregate = repository.load(account, version=3)
    aggregate.balance = Decimal("123456789.00")  # a forged snapshot: the events say otherwise
    repository.write_snapshot(aggregate)
    assert repository.load(account, version=3).balance == Decimal("123456789.00")
    page = auditor.get(f"{EVENTS}timeline/{account}/state/?at=3").content.decode()
    assert "State at version 3" in page
    assert "123456789" not in page
    compare = auditor.get(f"{EVENTS}timeline/{account}/compare/?a=3&b=4").content.decode()
    assert "123456789" not in compare
