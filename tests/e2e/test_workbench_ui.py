"""The auditor's workbench in a real browser: a read model's History button opens the
account's timeline, and an 8-character id prefix finds the account's events."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from bankdemo.models import AccountBalance
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
