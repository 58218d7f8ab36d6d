"""The auditor's workbench in a real browser: a read model's History button opens the
account's timeline, an 8-character id prefix finds the account's events, and a long timeline
pages and jumps to a version."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from bankdemo.domain import BankAccount
from bankdemo.models import AccountBalance
from eventsourcing_app.audit import paging
from eventsourcing_app.wiring import get_repository
from tests.e2e.conftest import History

EVENTS = "/admin/eventsourcing_app/event/"


def test_history_button_reaches_the_timeline_and_a_prefix_finds_the_events(
    auditor_page: Page, history: History, screenshot
):
    page = auditor_page
    account = AccountBalance.objects.get(account_id=history.account_id)
    page.goto(f"/admin/bankdemo/accountbalance/{account.pk}/change/")
    page.locator("a.historylink", has_text="History").click()
    expect(page).to_have_url(re.compile(rf"{EVENTS}timeline/{history.account_id}/$"))
    expect(page.locator("#content h1")).to_contain_text(str(history.account_id))
    screenshot("workbench-01-history-timeline")

    prefix = str(history.account_id)[:8]
    page.goto(EVENTS)
    page.locator("#searchbar").fill(prefix)
    page.locator("#changelist-search [type=submit]").click()
    rows = page.locator("#result_list tbody tr")
    expect(rows.first).to_be_visible()
    aggregates = page.locator("#result_list td.field-aggregate")
    for text in aggregates.all_inner_texts():
        assert text.split()[-1].startswith(prefix[:8])
    expect(aggregates.first).to_contain_text(f"bank.Account {prefix}")
    screenshot("workbench-02-prefix-search")


def test_a_long_timeline_pages_and_jumps(auditor_page: Page, monkeypatch, screenshot):
    """250 events, checked a page at a time: next, last, and a jump to a version's card."""
    monkeypatch.setattr(paging, "WHOLE_CHECK_UP_TO", 50)
    account = BankAccount.open(owner="Long History", currency="EUR")
    for number in range(1, 250):
        account.deposit(f"{number}.00")
    get_repository(BankAccount).save(account)
    page = auditor_page
    page.goto(f"{EVENTS}timeline/{account.id}/")
    extent = page.locator("#extent")
    expect(extent).to_contain_text("250 events · versions 1\u2013100 on page 1 of 3")
    expect(page.locator("#tamper")).to_contain_text("verified for versions 1\u2013100")
    expect(page.locator("#v100")).to_be_visible()
    expect(page.locator("#v101")).to_have_count(0)

    page.locator("nav.es-pager a[rel=next]").first.click()
    expect(page).to_have_url(re.compile(r"\?page=2$"))
    expect(page.locator("#extent")).to_contain_text("versions 101\u2013200 on page 2 of 3")
    expect(page.locator("#v101 h3")).to_contain_text("v101 · bank.MoneyDeposited")

    page.locator("nav.es-pager a[rel=last]").first.click()
    expect(page.locator("#extent")).to_contain_text("versions 201\u2013250 on page 3 of 3")
    expect(page.locator("#v250")).to_be_visible()
    screenshot("workbench-03-timeline-last-page")

    page.locator("#jump input[name=version]").fill("150")
    page.locator("#jump [type=submit]").click()
    expect(page).to_have_url(re.compile(r"\?page=2#v150$"))
    expect(page.locator("#v150")).to_be_in_viewport()
