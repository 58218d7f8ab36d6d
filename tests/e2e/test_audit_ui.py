"""The audit UI in a real browser: an auditor browses, filters, time-travels and compares.

Each test ends with a full-page screenshot in test-artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

from django.contrib.auth.models import Group, User
from playwright.sync_api import Page, expect

from eventsourcing_app.ledger.sealer import seal_now
from eventsourcing_app.models import Event
from eventsourcing_app.projections import registry as projection_registry
from eventsourcing_app.wiring import get_event_store
from tests.e2e.conftest import History, log_in

EVENTS = "/admin/eventsourcing_app/event/"
PROJECTIONS = "/admin/eventsourcing_app/projectioncheckpoint/"


def result_rows(page: Page):
    return page.locator("#result_list tbody tr")


def body_rows(table):
    """The rows of a template's table, without its header row."""
    return table.locator("tr").filter(has=table.page.locator("td"))


def open_timeline(page: Page, account_id: uuid.UUID) -> None:
    """From the event list, follow the link to the account's timeline."""
    page.goto(EVENTS)
    link = page.locator("td.field-aggregate a", has_text=f"bank.Account {str(account_id)[:8]}")
    link.first.click()
    expect(page).to_have_url(re.compile(rf"{EVENTS}timeline/{account_id}/$"))


def stream(account_id: uuid.UUID) -> list[Event]:
    return list(Event.objects.filter(aggregate_id=account_id).order_by("version"))


def test_auditor_logs_in_to_a_read_only_admin(page: Page, history: History, screenshot):
    log_in(page, "auditor", history.passwords["auditor"])
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.locator("#content h1")).to_have_text("Site administration")
    expect(page.locator("#user-tools")).to_contain_text("auditor")
    events = page.locator("tr.model-event")
    expect(events).to_contain_text("Events")
    expect(events.locator("a.viewlink")).to_be_visible()
    expect(events.locator("a.addlink")).to_have_count(0)
    expect(events.locator("a.changelink")).to_have_count(0)
    expect(page.locator("tr.model-projectioncheckpoint")).to_be_visible()
    screenshot("01-admin-index")


def test_event_list_filters_by_event_type_and_searches_by_correlation(
    auditor_page: Page, history: History, screenshot
):
    page = auditor_page
    page.goto(EVENTS)
    expect(page.locator("#content h1")).to_have_text("Select event to view")
    expect(page.locator(".object-tools a.addlink")).to_have_count(0)
    expect(result_rows(page)).to_have_count(Event.objects.count())

    page.locator("#changelist-filter details[data-filter-title='event type']").get_by_role(
        "link", name="bank.MoneyDeposited", exact=True
    ).click()
    expect(page).to_have_url(re.compile(r"event_type=bank\.MoneyDeposited"))
    deposits = Event.objects.filter(event_type="bank.MoneyDeposited")
    expect(result_rows(page)).to_have_count(deposits.count())
    expect(page.locator("td.field-event_type")).to_have_text(
        ["bank.MoneyDeposited"] * deposits.count()
    )

    correlation = history.transfer_correlation
    page.locator("#searchbar").fill(correlation)
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(rf"q={correlation}"))
    expect(page).to_have_url(re.compile(r"event_type=bank\.MoneyDeposited"))
    expected = deposits.for_correlation(correlation).order_by("-transaction_id", "-id")
    assert expected.exists(), f"{correlation} made no deposit"
    expect(result_rows(page)).to_have_count(expected.count())
    expect(page.locator("th.field-position")).to_have_text(
        [f"{event.transaction_id}-{event.id}" for event in expected]
    )
    expect(page.locator("td.field-event_type")).to_have_text(
        ["bank.MoneyDeposited"] * expected.count()
    )
    expect(page.locator("td.field-correlation")).to_have_text([correlation] * expected.count())
    screenshot("02-event-list-filtered")


def test_timeline_shows_verified_chain_upcasts_and_balance_chart(
    auditor_page: Page, history: History, screenshot
):
    page = auditor_page
    open_timeline(page, history.account_id)
    events = stream(history.account_id)
    expect(page.locator("#content h1")).to_have_text(f"bank.Account {history.account_id}")
    expect(page.locator("#content")).to_contain_text(f"{len(events)} events")
    expect(page.locator("#tamper")).to_have_text("hash chain and ledger verified")  # seeded, sealed
    expect(page.locator("#tamper")).to_have_class(re.compile(r"\bes-ok\b"))

    old = [e for e in events if e.event_type == "bank.MoneyDeposited" and e.schema_version < 3]
    upcasts = page.locator(".es-badge", has_text="upcast")
    expect(upcasts).to_have_count(len(old))
    expect(upcasts.first).to_contain_text(f"stored as schema v{old[0].schema_version}, upcast")
    expect(page.locator(f"#v{old[0].version}")).to_contain_text("As upcast")

    line = page.locator("svg.es-chart polyline")
    expect(line).to_be_visible()
    expect(line).to_have_attribute("points", re.compile(r"^[\d.]+,[\d.]+( [\d.]+,[\d.]+)+$"))
    assert len(line.get_attribute("points").split()) == len(events)
    expect(page.locator(".es-card[id^=v]")).to_have_count(len(events))
    screenshot("03-timeline")


def test_state_form_travels_to_a_past_date(auditor_page: Page, history: History, screenshot):
    page = auditor_page
    open_timeline(page, history.account_id)
    events = stream(history.account_id)
    # A minute well between two events in the middle of the stream.
    middle = len(events) // 2
    before, after = next(
        (a.created_at, b.created_at)
        for a, b in zip(events[middle:], events[middle + 1 :], strict=False)
        if b.created_at - a.created_at > dt.timedelta(minutes=5)
    )
    moment = (before + (after - before) / 2).replace(second=0, microsecond=0)
    expected = sum(1 for event in events if event.created_at <= moment)
    assert 0 < expected < len(events)

    page.locator("form.es-point input[name=at]").fill(moment.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Show state").click()
    expect(page).to_have_url(re.compile(rf"{EVENTS}timeline/{history.account_id}/state/\?at="))
    expect(page.locator(".messagelist")).to_have_count(0)
    state = page.locator("#state")
    expect(state.locator("h3")).to_have_text(f"State at version {expected}")
    expect(state).to_contain_text("balance")
    expect(page.locator("input[name=at]")).to_have_value(moment.strftime("%Y-%m-%dT%H:%M"))
    since = page.locator(".es-card", has_text="events since then")
    expect(since.locator("h3")).to_have_text(f"{len(events) - expected} events since then")
    expect(body_rows(since).first.locator("td").first).to_have_text(f"v{expected + 1}")
    screenshot("04-state-at-date")


def test_compare_two_versions_shows_the_events_between(
    auditor_page: Page, history: History, screenshot
):
    page = auditor_page
    open_timeline(page, history.account_id)
    page.locator("input[name=a]").fill("2")
    page.locator("input[name=b]").fill("5")
    page.get_by_role("button", name="Compare").click()
    expect(page).to_have_url(re.compile(r"/compare/\?a=2&b=5$"))

    comparison = page.locator("#comparison")
    expect(comparison.locator("h3")).to_have_text(["Version 2", "Version 5"])
    expect(comparison).to_contain_text("balance")
    expect(page.locator(".es-card", has_text="What changed")).to_contain_text("balance")
    between = page.locator(".es-card", has_text="events between them")
    expect(between.locator("h3")).to_have_text("The 3 events between them, and who caused them")
    events = [e for e in stream(history.account_id) if 2 < e.version <= 5]
    rows = body_rows(between)
    expect(rows).to_have_count(3)
    expect(rows.locator("td:nth-child(1)")).to_have_text([f"v{e.version}" for e in events])
    expect(rows.locator("td:nth-child(2)")).to_have_text([e.event_type for e in events])
    screenshot("05-compare")


def test_correlation_trail_spans_several_aggregates(
    auditor_page: Page, history: History, screenshot
):
    page = auditor_page
    correlation = history.transfer_correlation
    page.goto(EVENTS)
    page.locator("#searchbar").fill(correlation)
    page.get_by_role("button", name="Search").click()
    page.locator("td.field-correlation a", has_text=correlation).first.click()
    expect(page).to_have_url(re.compile(rf"{EVENTS}correlation/{correlation}/$"))

    events = list(Event.objects.for_correlation(correlation).order_by("transaction_id", "id"))
    assert len({e.aggregate_id for e in events}) > 1
    expect(page.locator("#content h1")).to_have_text(f"Correlation {correlation}")
    expect(page.locator("#content")).to_contain_text(f"{len(events)} events share")
    rows = body_rows(page.locator("#trail"))
    expect(rows).to_have_count(len(events))
    expect(rows.locator("td:nth-child(4)")).to_have_text([e.event_type for e in events])
    aggregates = rows.locator("td:nth-child(3) a").all_inner_texts()
    assert len(set(aggregates)) > 1, aggregates
    assert {text.split()[0] for text in aggregates} == {"bank.Account", "bank.Transfer"}
    screenshot("06-correlation-trail")


def test_tellers_and_anonymous_users_stay_out(live_server, page: Page, screenshot):
    teller = User.objects.create_user("e2e-teller", password="teller-e2e-password")
    teller.groups.add(Group.objects.get(name="tellers"))
    assert not teller.is_staff

    log_in(page, "e2e-teller", "teller-e2e-password")
    expect(page).to_have_url(re.compile(r"/admin/login/"))
    expect(page.locator(".errornote")).to_contain_text(
        "The account “e2e-teller” has no admin access"
    )
    screenshot("07-teller-refused")

    for url in (EVENTS, f"{EVENTS}timeline/{uuid.uuid4()}/", PROJECTIONS):
        page.goto(url)
        expect(page).to_have_url(re.compile(rf"/admin/login/\?next={re.escape(url)}$"))
        expect(page.locator("#login-form")).to_be_visible()
    screenshot("07-anonymous-redirected")


def test_projection_status_lists_every_projection(auditor_page: Page, history: History, screenshot):
    page = auditor_page
    page.locator("tr.model-projectioncheckpoint a", has_text="Projection checkpoints").click()
    expect(page).to_have_url(re.compile(rf"{PROJECTIONS}$"))
    table = page.locator("#projection-status")
    expect(table).to_be_visible()
    expect(table.locator("tr").first.locator("th")).to_have_text(
        ["Projection", "Kind", "Status", "Position", "Head", "Behind", "Last error"]
    )
    names = [*sorted(projection_registry.names()), "ledger"]  # the seed sealed the log too
    rows = body_rows(table)
    expect(rows.locator("td:nth-child(1)")).to_have_text(names)
    expect(rows.locator("td:nth-child(6)")).to_have_text(["up to date"] * len(names))
    expect(table).not_to_contain_text("failed")
    expect(page.locator("#result_list")).to_be_visible()
    expect(page.locator("select[name=action]")).to_have_count(0)
    screenshot("08-projection-status")


def test_event_page_shows_its_ledger_entry_with_a_verified_proof(
    auditor_page: Page, history: History, screenshot
):
    digest = seal_now(get_event_store())
    page = auditor_page
    open_timeline(page, history.account_id)
    expect(page.locator("#tamper")).to_have_text("hash chain and ledger verified")
    event = stream(history.account_id)[1]
    page.locator(f"#v{event.version}").get_by_role("link", name="event page").click()
    expect(page).to_have_url(re.compile(rf"{EVENTS}{event.pk}/change/$"))
    log = list(Event.objects.order_by("transaction_id", "id").values_list("pk", flat=True))
    expect(page.locator("#leaf-index")).to_have_text(str(log.index(event.pk)))
    expect(page.locator("#digest")).to_contain_text(f"tree size {digest.tree_size}")
    expect(page.locator("#digest")).to_contain_text(digest.root_hash)
    expect(page.locator("#proof")).to_have_text("proof verified")
    expect(page.locator("#proof")).to_have_class(re.compile(r"\bes-ok\b"))
    screenshot("09-event-page-ledger")
