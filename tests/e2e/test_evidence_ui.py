"""Evidence in a real browser: an auditor exports the filtered event list as CSV and JSON Lines,
checks each file against its manifest and finds the export recorded; and who made an event
(by name) and why shows on the list, the event page, the timeline and the correlation trail.

Each test ends with a full-page screenshot in test-artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, expect

from bankdemo import services
from eventsourcing_app.models import Event, EvidenceExport
from tests.e2e.conftest import History

EVENTS = "/admin/eventsourcing_app/event/"
EXPORTS = "/admin/eventsourcing_app/evidenceexport/"
DEPOSITS = "bank.MoneyDeposited"
# Has a character of each kind that HTML must escape, and fits the list's 60-character column.
REASON = "Invoice 2026-117 <paid> & 'settled' early"


@dataclass
class Exported:
    """A file the browser downloaded from the event list's export link."""

    export_id: str
    filename: str
    body: bytes


def listed_count(page: Page) -> int:
    """The number of events the list says its filters select ("31 events")."""
    text = page.locator("#changelist .paginator").inner_text()
    match = re.search(r"(\d+) events?\b", text)
    assert match, f"no event count in {text!r}"
    return int(match.group(1))


def listed_positions(page: Page) -> list[str]:
    return page.locator("#result_list th.field-position").all_inner_texts()


def download(page: Page, fmt: str, tmp_path: Path) -> Exported:
    """Click the list's export link for `fmt` and wait for the whole file."""
    with page.expect_download() as started:
        page.locator(f"#content .object-tools a.evidence-export[data-format={fmt}]").click()
    file = started.value
    assert file.failure() is None, file.failure()
    match = re.fullmatch(rf"evidence-([0-9a-f-]{{36}})\.{fmt}", file.suggested_filename)
    assert match, file.suggested_filename
    saved = tmp_path / file.suggested_filename
    file.save_as(saved)
    return Exported(match.group(1), file.suggested_filename, saved.read_bytes())


def check_manifest(page: Page, exported: Exported, rows: int, filters: dict) -> None:
    """The export's manifest names the downloaded file, its row count, hash and filters."""
    response = page.goto(f"{EVENTS}export/{exported.export_id}/manifest.json")
    assert response is not None
    assert response.ok, response.status
    manifest = response.json()
    assert manifest["file"] == exported.filename
    assert manifest["exported_by"] == "auditor"
    assert manifest["row_count"] == rows
    assert manifest["sha256"] == hashlib.sha256(exported.body).hexdigest()
    assert manifest["filters"] == filters


def check_recorded(page: Page, exported: Exported, rows: int, fmt: str, query: str) -> None:
    """The record of exports, reached from the admin index, lists this one: who, what, hash."""
    page.goto("/admin/")
    page.locator("tr.model-evidenceexport a", has_text="Evidence exports").click()
    expect(page).to_have_url(re.compile(rf"{EXPORTS}$"))
    record = page.locator("#result_list tbody tr", has_text=exported.export_id)
    expect(record).to_have_count(1)
    expect(record.locator("td.field-exported_by")).to_have_text("auditor")
    expect(record.locator("td.field-format")).to_have_text(fmt)
    expect(record.locator("td.field-row_count")).to_have_text(str(rows))
    expect(record.locator("td.field-query_string")).to_have_text(query)
    expect(record.locator("td.field-sha256")).to_have_text(
        hashlib.sha256(exported.body).hexdigest()
    )


def test_csv_export_of_one_event_type_matches_the_list_its_manifest_and_its_record(
    auditor_page: Page, history: History, flushable_events, tmp_path: Path, screenshot
):
    page = auditor_page
    page.goto(EVENTS)
    page.locator("#changelist-filter details[data-filter-title='event type']").get_by_role(
        "link", name=DEPOSITS, exact=True
    ).click()
    expect(page).to_have_url(re.compile(rf"\?event_type={re.escape(DEPOSITS)}$"))
    deposits = Event.objects.filter(event_type=DEPOSITS).count()
    expect(page.locator("#changelist .paginator")).to_contain_text(f"{deposits} events")
    count = listed_count(page)
    positions = listed_positions(page)
    assert len(positions) == count > 10  # one page: the list shows every row it counts
    link = page.locator("a.evidence-export[data-format=csv]")
    expect(link).to_have_text("Export CSV")
    expect(link).to_have_attribute("href", f"{EVENTS}export/csv/?event_type={DEPOSITS}")
    screenshot("evidence-01-filtered-list")

    exported = download(page, "csv", tmp_path)
    rows = list(csv.DictReader(io.StringIO(exported.body.decode("utf-8"))))
    assert len(rows) == count
    assert {row["event_type"] for row in rows} == {DEPOSITS}
    assert sorted(row["position"] for row in rows) == sorted(positions)

    check_manifest(page, exported, count, {"event_type": [DEPOSITS]})
    check_recorded(page, exported, count, "CSV", f"event_type={DEPOSITS}")
    screenshot("evidence-02-export-recorded")


def test_json_lines_export_of_a_prefix_search_matches_the_list_its_manifest_and_its_record(
    auditor_page: Page, history: History, flushable_events, tmp_path: Path, screenshot
):
    page = auditor_page
    prefix = str(history.account_id)[:8]
    page.goto(EVENTS)
    page.locator("#searchbar").fill(prefix)
    page.locator("#changelist-search [type=submit]").click()
    expect(page).to_have_url(re.compile(rf"\?q={prefix}$"))
    stream = Event.objects.filter(aggregate_id=history.account_id).count()
    expect(page.locator("#changelist .paginator")).to_contain_text(f"{stream} events")
    count = listed_count(page)
    positions = listed_positions(page)
    assert len(positions) == count > 5
    link = page.locator("a.evidence-export[data-format=jsonl]")
    expect(link).to_have_text("Export JSON Lines")
    expect(link).to_have_attribute("href", f"{EVENTS}export/jsonl/?q={prefix}")

    exported = download(page, "jsonl", tmp_path)
    lines = exported.body.decode("utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == count
    assert {row["aggregate_id"] for row in rows} == {str(history.account_id)}
    assert sorted(row["position"] for row in rows) == sorted(positions)
    assert [row["version"] for row in rows] == list(range(1, count + 1))  # in log order

    check_manifest(page, exported, count, {"q": [prefix]})
    check_recorded(page, exported, count, "JSON Lines", f"q={prefix}")
    assert EvidenceExport.objects.count() == 1  # the download, once; the manifest records none
    screenshot("evidence-03-json-lines-recorded")


def teller_transfer(browser: Browser, base_url: str, password: str, correlation: str) -> dict:
    """As the teller, through the bank's API over HTTP: open two accounts, fund one, and
    request a transfer between them with REASON; return the accounts' and transfer's ids."""
    context = browser.new_context(base_url=base_url)
    try:
        api = context.request
        token = api.post("/api/auth/token/", data={"username": "teller", "password": password})
        assert token.ok, token.text()
        headers = {"Authorization": f"Token {token.json()['token']}"}

        def command(path: str, body: dict, status: int, correlation: str | None = None) -> dict:
            sent = {**headers, "X-Correlation-ID": correlation} if correlation else headers
            response = api.post(path, data=body, headers=sent)
            assert response.status == status, response.text()
            return response.json()

        source, destination = (
            command("/api/accounts/", {"owner": owner, "currency": "EUR", "reason": REASON}, 201)
            for owner in ("Evidence Payer", "Evidence Payee")
        )
        command(
            f"/api/accounts/{source['id']}/deposit/", {"amount": "100.00", "reason": REASON}, 200
        )
        body = {"source_id": source["id"], "destination_id": destination["id"], "amount": "25.00"}
        transfer = command("/api/transfers/", {**body, "reason": REASON}, 202, correlation)
    finally:
        context.close()
    services.settle_transfers()  # the worker's job in production
    return {"source": source["id"], "destination": destination["id"], "transfer": transfer["id"]}


def test_who_and_why_show_on_the_list_the_event_page_the_timeline_and_the_trail(
    auditor_page: Page, history: History, browser: Browser, live_server, screenshot
):
    page = auditor_page
    correlation = f"e2e-evidence-{uuid.uuid4().hex[:8]}"
    ids = teller_transfer(browser, live_server.url, history.passwords["teller"], correlation)
    teller_id = str(User.objects.get(username="teller").pk)
    trail = list(Event.objects.for_correlation(correlation).order_by("transaction_id", "id"))
    # The request, the saga's debit and credit, the transfer's completion: all by the teller.
    assert len(trail) >= 4
    assert {str(e.aggregate_id) for e in trail} == set(ids.values())
    assert all(e.metadata.get("username") == "teller" for e in trail)
    debit = next(e for e in trail if str(e.aggregate_id) == ids["source"])

    page.goto(EVENTS)
    expect(page.locator("#result_list thead th.column-user")).to_have_text("User")
    expect(page.locator("#result_list thead th.column-reason")).to_have_text("Reason")
    page.locator("#searchbar").fill(correlation)
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(len(trail))
    expect(rows.locator("td.field-user")).to_have_text(["teller"] * len(trail))
    expect(rows.locator("td.field-user span").first).to_have_attribute(
        "title", f"user id {teller_id}"
    )
    expect(rows.locator("td.field-reason")).to_have_text([REASON] * len(trail))
    screenshot("evidence-04-who-why-list")

    page.locator("th.field-position a", has_text=f"{debit.transaction_id}-{debit.id}").click()
    expect(page).to_have_url(re.compile(rf"{EVENTS}{debit.pk}/change/"))
    expect(page.locator("#event-user")).to_have_text(
        f"teller (user id {teller_id}, as recorded then)"
    )
    expect(page.locator("#event-reason")).to_have_text(REASON)
    screenshot("evidence-05-who-why-event-page")

    page.locator("a.es-timeline-link").click()
    expect(page).to_have_url(re.compile(rf"{EVENTS}timeline/{ids['source']}/#v{debit.version}$"))
    card = page.locator(f"#v{debit.version}")
    expect(card.locator("h3")).to_contain_text(f"v{debit.version} · {debit.event_type}")
    expect(card.locator(".es-who")).to_have_text(f"teller (id {teller_id})")
    expect(card.locator(".es-why")).to_have_text(f"Reason: {REASON}")
    screenshot("evidence-06-who-why-timeline")

    card.get_by_role("link", name=correlation).click()
    expect(page).to_have_url(re.compile(rf"{EVENTS}correlation/{correlation}/$"))
    trail_rows = page.locator("#trail tr").filter(has=page.locator("td"))
    expect(trail_rows).to_have_count(len(trail))
    expect(trail_rows.locator("td:nth-child(4)")).to_have_text([e.event_type for e in trail])
    expect(trail_rows.locator("td:nth-child(6)")).to_have_text(["teller"] * len(trail))
    expect(trail_rows.locator("td:nth-child(7)")).to_have_text([REASON] * len(trail))
    screenshot("evidence-07-who-why-trail")
