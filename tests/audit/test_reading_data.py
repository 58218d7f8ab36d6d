"""Reading data on the audit pages: JSON (pretty, sorted, monospaced), money in its currency's
minor units and right-aligned, a balance chart against time with dated and amount axes, and
dates in one form (UTC, `2026-12-01 13:45:07Z`) on lists, event pages and timelines."""

import datetime as dt
import html
import re
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User

from bankdemo import seeding, services
from bankdemo.models import LedgerEntry
from eventsourcing_app.audit import charts
from eventsourcing_app.audit.display import amount_text, pretty_json, utc, value_text
from eventsourcing_app.models import Event, Snapshot

pytestmark = pytest.mark.usefixtures("log_db")
EVENTS = "/admin/eventsourcing_app/event/"
BANK = "/admin/bankdemo/"
ISO = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ")


@pytest.fixture
def auditor(client):
    user = User.objects.create_user("auditor-7", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name="auditors")[0])
    client.force_login(user)
    return client


@pytest.fixture
def accounts():
    """Accounts in EUR (2 places), JPY (none) and KWD (3), each funded, then a transfer."""
    opened = {}
    for currency, deposit in (("EUR", "25145.23"), ("JPY", "1200"), ("KWD", "0.5")):
        account, _ = services.account_open(owner=f"Owner {currency}", currency=currency)
        services.account_deposit(account_id=account.id, amount=deposit)
        services.account_withdraw(account_id=account.id, amount=deposit)
        services.account_deposit(account_id=account.id, amount=deposit)
        opened[currency] = account.id
    other, _ = services.account_open(owner="Other EUR", currency="EUR")
    services.transfer_request(source_id=opened["EUR"], destination_id=other.id, amount="10.50")
    services.settle_transfers()
    seeding.catch_up_projections()
    return opened


def page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return html.unescape(response.content.decode())


def test_the_helpers_give_one_date_form_json_and_minor_units():
    assert utc(None) == "-"
    moment = dt.datetime(2026, 12, 1, 14, 45, 7, 123, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert utc(moment) == "2026-12-01 13:45:07Z"
    assert utc(dt.date(2026, 12, 1)) == "2026-12-01"
    assert pretty_json({"b": None, "a": Decimal("1.50")}) == '{\n  "a": "1.50",\n  "b": null\n}'
    assert amount_text(Decimal("25145.230"), 2) == "25,145.23"
    assert amount_text(Decimal("1200.000"), 0) == "1,200"
    assert amount_text(Decimal("0.5"), 3) == "0.500"


def test_an_empty_value_reads_empty_and_a_collection_as_json():
    assert value_text(None) == "(empty)"
    assert value_text("") == "(empty)"
    assert value_text(0) == "0"
    assert value_text("Ada") == "Ada"
    assert value_text([None, "5.00"]) == '[\n  null,\n  "5.00"\n]'
    assert value_text({"closed_at": None}) == pretty_json({"closed_at": None})


def test_the_timeline_and_the_event_page_show_json_not_python(auditor, accounts):
    deposit = Event.objects.filter(event_type="bank.MoneyDeposited").first()
    timeline = page(auditor, f"{EVENTS}timeline/{deposit.aggregate_id}/")
    assert '"transfer_id": null' in timeline
    assert "'transfer_id'" not in timeline
    assert "None" not in re.sub(r"<[^>]+>", "", timeline.split('id="v1"')[1])
    assert '<pre class="es-json">' in timeline
    event_page = page(auditor, f"{EVENTS}{deposit.pk}/change/")
    assert '<pre class="es-json">' in event_page
    assert '"transfer_id": null' in event_page
    assert pretty_json(deposit.event_data) in event_page  # indented by 2, keys sorted
    assert pretty_json(deposit.metadata) in event_page
    assert "style=" not in event_page.split('id="content"')[1]  # the CSP allows no inline style


def test_the_snapshot_page_shows_json_with_its_values_read(auditor, accounts):
    snapshot = Snapshot.objects.create(
        aggregate_id=uuid.uuid4(), aggregate_type="bank.Account", version=3,
        state={"owner": "Ada", "balance": {"$decimal": "0"}, "closed_at": None},
    )  # fmt: skip
    text = page(auditor, f"/admin/eventsourcing_app/snapshot/{snapshot.pk}/change/")
    assert (
        '<pre class="es-json">{\n  "balance": "0",\n  "closed_at": null,\n  "owner": "Ada"\n}'
        in text
    )
    assert '"$decimal": "0"' in text  # the state as stored, too, as JSON
    assert "None" not in text.split('id="content"')[1]
    listing = page(auditor, "/admin/eventsourcing_app/snapshot/")
    assert utc(snapshot.created_at) in listing


def amounts(text: str) -> list[str]:
    return re.findall(r'<span class="es-amount">([^<]*)</span>', text)


def test_money_follows_its_currency_in_the_read_model_lists(auditor, accounts):
    balances = amounts(page(auditor, f"{BANK}accountbalance/"))
    assert {"25,134.73", "1,200", "0.500", "10.50"} <= set(balances)
    assert not any(value.endswith(("230", "1,200.000")) for value in balances)
    ledger = page(auditor, f"{BANK}ledgerentry/")
    assert {"25,145.23", "1,200", "0.500"} <= set(amounts(ledger))
    assert "1200.000" not in ledger
    assert "25145.230" not in ledger
    daily = amounts(page(auditor, f"{BANK}dailytotal/"))
    assert {"50,300.96", "2,400", "1.000"} <= set(daily)  # two deposits (and the transfer's)
    transfers = page(auditor, f"{BANK}transferstatus/")
    assert amounts(transfers) == ["10.50"]
    for listing in (f"{BANK}accountbalance/", f"{BANK}ledgerentry/"):
        assert "eventsourcing_app/audit.css" in page(auditor, listing)  # right-aligned there


def test_the_balance_chart_has_axes_and_plots_against_time(auditor, accounts):
    account_id = accounts["KWD"]
    events = list(Event.objects.filter(aggregate_id=account_id).order_by("version"))
    text = page(auditor, f"{EVENTS}timeline/{account_id}/")
    chart = text.split('<svg class="es-chart"')[1].split("</svg>")[0]
    dates = re.findall(r'class="es-tick es-tick-x"[^>]*>([^<]*)<', chart)
    assert dates[0] == utc(events[0].created_at)
    assert dates[-1] == utc(events[-1].created_at)
    assert all(ISO.fullmatch(date) for date in dates)
    values = re.findall(r'class="es-tick es-tick-y"[^>]*>([^<]*)<', chart)
    assert values[0] == "0.500 KWD"
    assert values[-1] == "0.000 KWD"
    states = [{"balance": "5"}, {"balance": "6"}, {"balance": "8"}]
    times = [e.created_at for e in events[:3]]
    charts.register_series("test.Thing", "level", lambda state: state["balance"])
    plotted = charts.chart("test.Thing", states, times)
    xs = [float(point.split(",")[0]) for point in plotted["points"].split()]
    ys = [float(point.split(",")[1]) for point in plotted["points"].split()]
    span = (times[2] - times[0]).total_seconds()
    expected = (times[1] - times[0]).total_seconds() / span
    assert (xs[1] - xs[0]) / (xs[2] - xs[0]) == pytest.approx(expected, abs=0.01)  # by time
    assert plotted["zero"] is None  # not forced down to 0: 5 is the bottom
    assert max(ys) == pytest.approx(plotted["bottom"])
    assert min(ys) == pytest.approx(plotted["top"])


def test_dates_have_one_form_on_lists_event_pages_and_timelines(auditor, accounts):
    event = Event.objects.filter(aggregate_id=accounts["EUR"]).order_by("version").first()
    when = utc(event.created_at)
    assert ISO.fullmatch(when)
    assert f'<td class="field-when">{when}</td>' in page(auditor, EVENTS)
    assert f'<div class="readonly">{when}</div>' in page(auditor, f"{EVENTS}{event.pk}/change/")
    timeline = page(auditor, f"{EVENTS}timeline/{event.aggregate_id}/")
    assert f'<p class="es-meta">{when} · position' in timeline
    assert " UTC · position" not in timeline
    entry = LedgerEntry.objects.filter(account_id=accounts["EUR"]).first()
    ledger = page(auditor, f"{BANK}ledgerentry/")
    assert re.search(rf'field-created"><a href="[^"]+">{utc(entry.created_at)}</a>', ledger)

    transfers = page(auditor, f"{BANK}transferstatus/")
    assert re.search(r'field-requested"><a href="[^"]+">' + ISO.pattern, transfers)
    for url in (f"{BANK}dailytotal/", EVENTS, f"{BANK}ledgerentry/"):
        text = page(auditor, url)
        assert not re.search(
            r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\w*\.? \d",
            text.split('id="result_list"')[1],
        )
