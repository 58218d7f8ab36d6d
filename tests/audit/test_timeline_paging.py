"""Long timelines and correlation trails a page at a time: exact counts, first/previous/next/
last, jumps to a version or a date, states that continue across pages, and checks that still
catch what was altered on the page shown and before it."""

import datetime as dt
import re
from decimal import Decimal

import pytest

from bankdemo.domain import BankAccount
from eventsourcing_app.audit import paging, views
from eventsourcing_app.core.context import metadata_context
from eventsourcing_app.ledger.sealer import seal_now
from eventsourcing_app.models import Event
from eventsourcing_app.wiring import get_event_store, get_repository
from tests.audit.test_admin import EVENTS
from tests.audit.test_ledger_pages import tamper

pytestmark = pytest.mark.usefixtures("log_db")

LENGTH = 250


@pytest.fixture
def long_stream(monkeypatch):
    """An account of LENGTH events (deposits of 1, 2, 3 ... EUR), checked a page at a time."""
    monkeypatch.setattr(paging, "WHOLE_CHECK_UP_TO", 50)
    account = BankAccount.open(owner="Long History", currency="EUR")
    for number in range(1, LENGTH):
        account.deposit(f"{number}.00")
    get_repository(BankAccount).save(account)
    return account.id


def timeline(client, aggregate_id, query=""):
    response = client.get(f"{EVENTS}timeline/{aggregate_id}/{query}")
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def cards(page: str) -> list[int]:
    return [int(version) for version in re.findall(r'<div class="es-card[^"]*" id="v(\d+)"', page)]


def balance_after(version: int) -> Decimal:
    """Deposits 1..version-1 after the opening event."""
    return Decimal(sum(range(1, version)))


def test_a_long_timeline_is_paged_with_an_exact_count(auditor, long_stream):
    first = timeline(auditor, long_stream)
    assert cards(first) == list(range(1, 101))
    assert f"{LENGTH} events · versions 1\u2013100 on page 1 of 3" in first
    for link in ('rel="next"', 'href="?page=2"', 'href="?page=last"'):
        assert link in first
    assert 'rel="prev"' not in first

    second = timeline(auditor, long_stream, "?page=2")
    assert cards(second) == list(range(101, 201))
    assert 'href="?page=1" rel="first"' in second
    assert 'href="?page=3" rel="next"' in second

    last = timeline(auditor, long_stream, "?page=last")
    assert cards(last) == list(range(201, LENGTH + 1))
    assert "page 3 of 3" in last
    assert 'rel="next"' not in last
    assert cards(timeline(auditor, long_stream, "?page=99")) == cards(last)  # beyond: the last


def test_states_continue_across_pages_and_from_the_cache(auditor, long_stream):
    """The state after v201 is the replay of v1-v201, cold and again from the page boundary."""
    expected = f'"balance": "{balance_after(201):.2f}"'
    cold = timeline(auditor, long_stream, "?page=3")
    assert paging.CACHE.nearest(("default", long_stream), 200)[0] == 200
    warm = timeline(auditor, long_stream, "?page=3")
    for page in (cold, warm):
        card = page[page.index('id="v201"') : page.index('id="v202"')]
        assert expected in card.replace("&quot;", '"')
    loaded = get_repository(BankAccount).load(long_stream, version=201)
    assert loaded.balance == balance_after(201)


def test_a_stale_boundary_is_not_used(auditor, long_stream):
    """A boundary is used only while the stored chain still runs through the hash it had."""
    timeline(auditor, long_stream, "?page=3")
    boundary = Event.objects.get(aggregate_id=long_stream, version=200)
    tamper("UPDATE events SET hash = %s WHERE id = %s", ["f" * 64, boundary.pk])
    page = timeline(auditor, long_stream, "?page=3")
    assert 'id="tamper">integrity broken: ' in page
    assert "previous_hash does not match the event before it" in page
    assert paging.CACHE.nearest(("default", long_stream), 200) is None or (
        paging.CACHE.nearest(("default", long_stream), 200)[1] == "f" * 64
    )


def test_invalid_pages_and_jumps_get_a_message_not_an_error(auditor, long_stream):
    for query in ("?page=abc", "?page=0", "?page=-1", "?version=x", "?date=yesterday",
                  "?version=99999999999999", "?page=%00"):  # fmt: skip
        response = auditor.get(f"{EVENTS}timeline/{long_stream}/{query}", follow=True)
        assert response.status_code in (200, 400), (query, response.status_code)
        if response.status_code == 200:
            assert cards(response.content.decode())[0] == 1, query


def test_jumps_go_to_the_page_and_card_of_a_version_or_a_date(auditor, long_stream):
    response = auditor.get(f"{EVENTS}timeline/{long_stream}/?version=150")
    assert response.status_code == 302
    assert response["Location"].endswith("?page=2#v150")
    beyond = auditor.get(f"{EVENTS}timeline/{long_stream}/?version=900")
    assert beyond["Location"].endswith(f"?page=3#v{LENGTH}")

    event = Event.objects.get(aggregate_id=long_stream, version=120)
    moment = event.created_at.astimezone(dt.UTC).isoformat()
    dated = auditor.get(f"{EVENTS}timeline/{long_stream}/", {"date": moment})
    assert dated.status_code == 302
    page, version = re.search(r"\?page=(\d+)#v(\d+)$", dated["Location"]).groups()
    assert int(page) == paging.page_of_version(int(version))
    assert int(version) >= 120  # the last event at or before that instant (same-instant ones too)


def test_a_page_checks_what_it_shows_and_offers_the_whole_stream(auditor, long_stream):
    seal_now(get_event_store())
    page = timeline(auditor, long_stream, "?page=2")
    assert 'id="tamper">hash chain and ledger verified for versions 101\u2013200' in page
    assert "100 of 100 events on this page sealed in the ledger" in page
    assert 'id="check-stream"' in page

    earlier = Event.objects.get(aggregate_id=long_stream, version=30)
    tamper("UPDATE events SET event_data = %s WHERE id = %s", ['{"amount": "1.00"}', earlier.pk])
    assert 'id="tamper">hash chain and ledger verified for versions 101\u2013200' in timeline(
        auditor, long_stream, "?page=2"
    )  # v30 is not on this page: the page says what it checked, and the whole check finds it
    whole = timeline(auditor, long_stream, "?page=2&check=stream")
    assert 'id="tamper">integrity broken: ' in whole
    assert f"event {earlier.pk} ({long_stream} v30)" in whole
    assert f'href="?version=30">event {earlier.pk} · v30</a>' in whole

    on_page = Event.objects.get(aggregate_id=long_stream, version=150)
    tamper("UPDATE events SET event_data = %s WHERE id = %s", ['{"amount": "1.00"}', on_page.pk])
    altered = timeline(auditor, long_stream, "?page=2")
    assert 'id="tamper">integrity broken: ' in altered
    assert "the row was altered" in altered
    assert 'class="es-card es-tampered" id="v150"' in altered


def test_missing_events_on_a_page_and_a_stream_cut_short(auditor, long_stream):
    seal_now(get_event_store())
    events = {e.version: e for e in Event.objects.filter(aggregate_id=long_stream)}
    tamper("DELETE FROM events WHERE id = %s", [events[120].pk])
    gap = timeline(auditor, long_stream, "?page=2")
    assert "now missing" in gap
    assert "events are missing" in gap

    tamper("DELETE FROM events WHERE id = %s", [events[LENGTH].pk])
    last = timeline(auditor, long_stream, "?page=last")
    assert f"up to version {LENGTH}; the log now ends at version {LENGTH - 1}" in last


def test_a_long_correlation_trail_is_paged(auditor):
    correlation = "corr-paged-trail"
    with metadata_context(correlation_id=correlation):
        for _ in range(3):
            account = BankAccount.open(owner="Trail", currency="EUR")
            for number in range(149):
                account.deposit(f"{number + 1}.00")
            get_repository(BankAccount).save(account)
    assert Event.objects.for_correlation(correlation).count() == 450

    url = f"{EVENTS}correlation/{correlation}/"
    first = auditor.get(url).content.decode()
    assert "450 events share this correlation id, in log order: 1\u2013200 on page 1 of 3" in first
    assert first.count("<tr><td>") == 200
    last = auditor.get(url, {"page": "last"}).content.decode()
    assert "401\u2013450 on page 3 of 3" in last
    assert last.count("<tr><td>") == 50
    for bad in ("abc", "0", "9"):
        response = auditor.get(url, {"page": bad})
        assert response.status_code == 200
        assert "is not a page of this trail" in response.content.decode()
    later = Event.objects.for_correlation(correlation).order_by("transaction_id", "id")[300]
    earlier = Event.objects.for_correlation(correlation).filter(created_at__lt=later.created_at)
    dated = auditor.get(url, {"date": later.created_at.isoformat()}).content.decode()
    assert f"on page {earlier.count() // 200 + 1} of 3" in dated
    assert f"<td>{later.transaction_id}-{later.id}</td>" in dated


def test_state_and_compare_count_every_later_event_and_list_the_first(auditor, long_stream,
                                                                       monkeypatch):  # fmt: skip
    monkeypatch.setattr(views, "LISTED", 5)
    state = auditor.get(f"{EVENTS}timeline/{long_stream}/state/", {"at": "10"}).content.decode()
    assert f"{LENGTH - 10} events since then: the first 5, the timeline has them all" in state
    assert '?version=11">v11</a>' in state
    assert "?version=16" not in state
    compare = auditor.get(f"{EVENTS}timeline/{long_stream}/compare/", {"a": "3", "b": "200"})
    assert (
        "The 197 events between them, and who caused them (the first 5;" in compare.content.decode()
    )
