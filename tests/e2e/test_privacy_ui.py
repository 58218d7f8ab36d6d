"""A privacy officer forgets an account's data subject in a real browser: the data-subjects
list, the action with its reason, and the account's timeline that then says who erased the
owner's name, when and why, and no longer shows it.

Ends with full-page screenshots in test-artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from bankdemo.domain import BankAccount
from eventsourcing_app.audit.display import utc
from eventsourcing_app.models import PersonalDataKey
from eventsourcing_app.wiring import get_repository
from tests.e2e.conftest import History, log_in

SUBJECTS = "/admin/eventsourcing_app/personaldatakey/"
REASON = "Erasure request 58 (GDPR art. 17), checked by the DPO"


def test_a_privacy_officer_forgets_an_account_and_its_timeline_says_so(
    page: Page, history: History, screenshot
):
    account = history.account_id
    owner = get_repository(BankAccount).load(account).owner
    timeline = f"/admin/eventsourcing_app/event/timeline/{account}/"
    log_in(page, "privacy", history.passwords["privacy"])
    page.wait_for_url("**/admin/")

    page.goto(SUBJECTS)
    page.locator("#searchbar").fill(str(account)[:8])
    page.locator("#searchbar").press("Enter")
    row = page.locator("#result_list tbody tr", has_text=str(account))
    expect(row).to_have_count(1)
    expect(row.locator(f'a[href="{timeline}"]')).to_be_visible()
    row.locator("input.action-select").check()
    page.locator("select[name=action]").select_option("forget_subjects")
    page.get_by_title("Run the selected action").click()

    expect(page.locator("#content")).to_contain_text("Forget 1 data subject?")
    expect(page.locator("#forget-subjects")).to_contain_text(str(account))
    page.locator("textarea[name=reason]").fill("   ")  # blank: the server refuses it
    page.get_by_role("button", name="Yes, forget 1 subject").click()
    expect(page.locator("ul.messagelist")).to_contain_text("Give the reason for the erasure")
    assert not PersonalDataKey.objects.get(subject=str(account)).forgotten
    page.locator("textarea[name=reason]").fill(REASON)
    screenshot("privacy-01-forget-confirm")
    page.get_by_role("button", name="Yes, forget 1 subject").click()

    expect(page).to_have_url(re.compile(rf"{SUBJECTS}"))
    expect(page.locator("ul.messagelist .success")).to_contain_text(f"Forgot the subject {account}")
    key = PersonalDataKey.objects.get(subject=str(account))
    expect(page.locator("#result_list tbody tr", has_text=str(account))).to_contain_text(REASON)
    screenshot("privacy-02-subjects-after")

    page.locator(f'#result_list a[href="{timeline}"]').click()
    expect(page).to_have_url(re.compile(rf"{timeline}$"))
    erased = f"Personal data erased on {utc(key.forgotten_at)} by privacy: {REASON}"
    expect(page.locator("#v1")).to_contain_text(erased)
    expect(page.locator("#subject-forgotten")).to_contain_text(f"by privacy: {REASON}")
    expect(page.locator("body")).not_to_contain_text(owner)
    screenshot("privacy-03-timeline-erased")
