"""The read models' pages in the admin read like their lists: amounts in their currency's minor
units, dates in the one UTC form, the row named with its amounts read the same way; the state
and comparison pages show an empty field as "(empty)", never Python's `None`."""

import datetime as dt
import re
import uuid
from decimal import Decimal

import pytest
from django.contrib import admin
from django.db import models
from django.urls import reverse

from bankdemo import seeding, services
from bankdemo.models import AccountBalance, DailyTotal, LedgerEntry, TransferStatus
from eventsourcing_app.audit.display import EMPTY, utc
from eventsourcing_app.models import Event
from eventsourcing_app.wiring import get_repository
from tests.audit import test_reading_data as reading_data
from tests.audit.test_reading_data import EVENTS, ISO, page
from tests.domain.sample import Account as SampleAccount
from tests.domain.sample import AccountOpened

pytestmark = pytest.mark.usefixtures("log_db")
auditor = reading_data.auditor  # the logged-in auditor and the accounts the lists are tested on
accounts = reading_data.accounts
DJANGO_DATE = re.compile(r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\w*\.? \d|[ap]\.m\.")


@pytest.fixture
def transfers(accounts):
    """A transfer in JPY beside the fixture's one in EUR."""
    other, _ = services.account_open(owner="Other JPY", currency="JPY")
    services.transfer_request(source_id=accounts["JPY"], destination_id=other.id, amount="300")
    services.settle_transfers()
    seeding.catch_up_projections()
    return {row.currency: row for row in TransferStatus.objects.all()}


def change_page(client, row) -> str:
    opts = row._meta
    return page(client, reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk]))


def shown(text: str, field: str) -> str:
    """What the page shows in the row of `field` (the readonly box, its tags stripped)."""
    box = re.search(rf'class="form-row field-{field}">.*?<div class="readonly">(.*?)</div>',
                    text, re.S)  # fmt: skip
    assert box is not None, f"no field {field} on the page"
    return re.sub(r"<[^>]+>", "", box.group(1))


def assert_reads_like_the_lists(text: str, *stored: Decimal):
    """No amount as stored (`25145.230`, `1200.000`) and no date in Django's own form."""
    for amount in stored:
        assert str(amount) not in text
    assert not DJANGO_DATE.search(text.split('id="content"')[1])


def test_an_account_page_shows_its_amounts_in_its_currency_and_dates_in_utc(auditor, accounts):
    eur = AccountBalance.objects.get(account_id=accounts["EUR"])
    text = change_page(auditor, eur)
    assert shown(text, "balance_text") == "25,134.73"
    assert shown(text, "overdraft_limit_text") == "0.00"
    assert shown(text, "opened") == utc(eur.opened_at)
    assert ISO.fullmatch(shown(text, "updated"))
    assert "<h2>Owner EUR 25,134.73 EUR</h2>" in text
    assert "\N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} Owner EUR 25,134.73 EUR\n</div>" in text
    assert_reads_like_the_lists(text, eur.balance)
    history = reverse("admin:eventsourcing_timeline", args=[eur.account_id])
    assert f'href="{history}" class="historylink"' in text

    jpy = AccountBalance.objects.get(account_id=accounts["JPY"])
    text = change_page(auditor, jpy)
    assert shown(text, "balance_text") == "1,200"
    assert shown(text, "overdraft_limit_text") == "0"
    assert "<h2>Owner JPY 1,200 JPY</h2>" in text
    assert_reads_like_the_lists(text, jpy.balance)


def test_a_ledger_entry_page_shows_its_amounts_in_its_currency(auditor, accounts):
    for currency, amount in (("EUR", "25,145.23"), ("JPY", "1,200")):
        entry = LedgerEntry.objects.filter(account_id=accounts[currency], kind="deposit").first()
        text = change_page(auditor, entry)
        assert shown(text, "amount_text") == amount
        assert shown(text, "balance_after_text") == amount
        assert shown(text, "created") == utc(entry.created_at)
        assert f"<h2>deposit {amount} {currency} on {entry.account_id} v2</h2>" in text
        assert_reads_like_the_lists(text, entry.amount, entry.balance_after)
        at_version = reverse("admin:eventsourcing_timeline", args=[entry.account_id]) + "#v2"
        assert f'href="{at_version}" class="historylink"' in text


def test_a_transfer_page_shows_its_amount_in_its_currency(auditor, transfers):
    for currency, amount in (("EUR", "10.50"), ("JPY", "300")):
        transfer = transfers[currency]
        text = change_page(auditor, transfer)
        assert shown(text, "amount_text") == amount
        assert shown(text, "requested") == utc(transfer.requested_at)
        assert ISO.fullmatch(shown(text, "updated"))
        assert_reads_like_the_lists(text, transfer.amount)
        history = reverse("admin:eventsourcing_timeline", args=[transfer.transfer_id])
        assert f'href="{history}" class="historylink"' in text


def test_a_daily_total_page_shows_its_amounts_in_its_currency(auditor, accounts):
    for currency, deposits in (("EUR", "50,300.96"), ("JPY", "2,400")):
        total = DailyTotal.objects.get(currency=currency)
        text = change_page(auditor, total)
        assert shown(text, "deposits_text") == deposits
        assert shown(text, "day_text") == total.day.isoformat()
        assert_reads_like_the_lists(text, total.deposits, total.withdrawals)


@pytest.mark.parametrize("model", [AccountBalance, LedgerEntry, TransferStatus, DailyTotal])
def test_no_amount_or_date_of_a_read_model_is_shown_as_stored(model):
    """Every column is on the page, and the amounts and dates through a method that formats
    them: a column added later shows up as stored or not at all, and this fails."""
    model_admin = admin.site._registry[model]
    shown_as_stored = {models.DecimalField, models.DateTimeField, models.DateField}
    columns = {field.name: type(field) for field in model._meta.concrete_fields
               if not field.auto_created}  # fmt: skip
    raw = {name for name, kind in columns.items() if kind in shown_as_stored}
    assert raw  # the model has amounts or dates to format
    assert not raw & set(model_admin.fields)
    assert set(columns) - raw <= set(model_admin.fields)
    assert set(model_admin.fields) == set(model_admin.readonly_fields)


def fields_shown(text: str, card: str) -> dict[str, str]:
    part = text.split(card)[1].split("</table>")[0]
    return dict(re.findall(r"<tr><th>([^<]+)</th><td class=\"es-json\">([^<]*)</td></tr>", part))


@pytest.fixture
def half_open():
    """A sample account whose owner is still None after its first event (a deposit)."""
    account = SampleAccount(uuid.uuid4())
    account.deposit(Decimal("5.00"))
    account.record(AccountOpened("Ada", dt.date(2026, 1, 2)))
    get_repository(SampleAccount).save(account)
    return account.id


def test_state_and_comparison_show_an_empty_field_as_empty_not_none(auditor, half_open):
    timeline = f"{EVENTS}timeline/{half_open}/"
    state = page(auditor, f"{timeline}state/?at=1")
    assert fields_shown(state, 'id="state"') == {
        "owner": EMPTY,
        "balance": "5.00",
        "movements": '[\n  "5.00"\n]',
    }
    assert "None" not in re.sub(r"<[^>]+>", "", state.split('id="content"')[1])

    compare = page(auditor, f"{timeline}compare/?a=1&b=2")
    assert fields_shown(compare, "<h3>Version 1</h3>")["owner"] == EMPTY
    assert fields_shown(compare, "<h3>Version 2</h3>")["owner"] == "Ada"
    changed = f'owner: <span class="es-old">{EMPTY}</span> → <span class="es-new">Ada</span>'
    assert changed in compare
    assert "None" not in re.sub(r"<[^>]+>", "", compare.split('id="content"')[1])


def test_a_blank_field_of_a_bank_state_reads_empty_too(auditor, accounts):
    transfer = Event.objects.filter(event_type="bank.TransferRequested").first()
    state = page(auditor, f"{EVENTS}timeline/{transfer.aggregate_id}/state/?at=1")
    assert fields_shown(state, 'id="state"')["failure"] == EMPTY
