"""The auditor's workbench: History buttons that lead to the timeline, links between events,
transfers and trails, id-prefix search, user and date-range filters, and the snapshots list."""

import datetime as dt
import uuid

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from bankdemo import seeding, services
from bankdemo.models import AccountBalance, DailyTotal, LedgerEntry, TransferStatus
from eventsourcing_app.audit.admin import uuid_prefix_range
from eventsourcing_app.core.context import metadata_context
from eventsourcing_app.models import Event, Snapshot

pytestmark = pytest.mark.usefixtures("log_db")
EVENTS = "/admin/eventsourcing_app/event/"
SNAPSHOTS = "/admin/eventsourcing_app/snapshot/"


@pytest.fixture
def history():
    seeding.seed_history(accounts=3, events=40, progress=lambda n: None)
    seeding.seed_transfers(2)
    seeding.catch_up_projections()


@pytest.fixture
def auditor(client):
    user = User.objects.create_user("wb-auditor", is_staff=True)
    user.groups.add(Group.objects.get(name="auditors"))
    client.force_login(user)
    return user


def timeline(aggregate_id) -> str:
    return reverse("admin:eventsourcing_timeline", args=[aggregate_id])


def rows_of(page) -> set[int]:
    return {event.pk for event in page.context["cl"].result_list}


# History buttons ------------------------------------------------------------------------------


def test_the_history_button_of_an_account_leads_to_its_timeline(client, history, auditor):
    account = AccountBalance.objects.first()
    page = client.get(f"/admin/bankdemo/accountbalance/{account.pk}/change/").content.decode()
    assert f'href="{timeline(account.account_id)}" class="historylink"' in page
    assert "/history/" not in page
    history_page = client.get(f"/admin/bankdemo/accountbalance/{account.pk}/history/")
    assert history_page.status_code == 302
    assert history_page["Location"] == timeline(account.account_id)
    followed = client.get(history_page["Location"])
    assert followed.status_code == 200
    assert "have a change history" not in followed.content.decode()


def test_a_ledger_entry_links_its_event_trails_cause_and_transfer(client, history, auditor):
    entry = LedgerEntry.objects.exclude(transfer_id=None).first()
    event = Event.objects.get(pk=entry.event_id)
    page = client.get(f"/admin/bankdemo/ledgerentry/{entry.pk}/change/").content.decode()
    at_version = f"{timeline(entry.account_id)}#v{entry.version}"
    assert f'href="{at_version}" class="historylink"' in page
    assert reverse("admin:eventsourcing_app_event_change", args=[entry.event_id]) in page
    correlation = reverse(
        "admin:eventsourcing_correlation", args=[event.metadata["correlation_id"]]
    )
    assert f'href="{correlation}" id="correlation-trail"' in page
    assert 'class="es-causation-link"' in page
    assert f'href="{timeline(entry.transfer_id)}" class="es-transfer-link"' in page
    assert client.get(f"/admin/bankdemo/ledgerentry/{entry.pk}/history/")["Location"] == at_version
    listing = client.get("/admin/bankdemo/ledgerentry/").content.decode()
    assert f'<a href="{timeline(entry.transfer_id)}">{str(entry.transfer_id)[:8]}</a>' in listing


def test_a_transfer_links_its_timeline_trail_and_accounts(client, history, auditor):
    transfer = TransferStatus.objects.first()
    page = client.get(f"/admin/bankdemo/transferstatus/{transfer.pk}/change/").content.decode()
    assert f'href="{timeline(transfer.transfer_id)}" class="historylink"' in page
    assert 'id="correlation-trail"' in page
    assert f'href="{timeline(transfer.source_id)}" class="es-account-link"' in page
    assert f'href="{timeline(transfer.destination_id)}" class="es-account-link"' in page
    response = client.get(f"/admin/bankdemo/transferstatus/{transfer.pk}/history/")
    assert response["Location"] == timeline(transfer.transfer_id)
    trail = client.get(
        reverse("admin:eventsourcing_correlation", args=[
            Event.objects.filter(aggregate_id=transfer.transfer_id).first().metadata[
                "correlation_id"
            ]
        ])
    )  # fmt: skip
    assert trail.status_code == 200
    assert "bank.TransferRequested" in trail.content.decode()


def test_an_event_page_links_its_timeline_trail_and_cause(client, history, auditor):
    caused = next(e for e in Event.objects.all() if e.metadata["causation_id"].startswith("event:"))
    page = client.get(f"{EVENTS}{caused.pk}/change/").content.decode()
    assert f'href="{timeline(caused.aggregate_id)}#v{caused.version}"' in page
    assert 'class="es-correlation-link"' in page
    cause = caused.metadata["causation_id"].removeprefix("event:")
    cause_url = reverse("admin:eventsourcing_app_event_change", args=[cause])
    assert f'href="{cause_url}" class="es-causation-link"' in page
    response = client.get(f"{EVENTS}{caused.pk}/history/")
    assert response["Location"] == f"{timeline(caused.aggregate_id)}#v{caused.version}"


def test_a_daily_totals_history_is_the_event_list_of_its_day(client, history, auditor):
    row = DailyTotal.objects.first()
    response = client.get(f"/admin/bankdemo/dailytotal/{row.pk}/history/")
    day = row.day.isoformat()
    assert response["Location"] == f"{EVENTS}?created_from={day}&created_to={day}"
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert all(e.created_at.date() == row.day for e in page.context["cl"].result_list)


def test_home_rows_link_to_the_timeline_after_login(client, history, auditor):
    page = client.get("/").content.decode()
    account = AccountBalance.objects.order_by("owner").first()
    assert f'<a href="{timeline(account.account_id)}" class="timeline-link">' in page
    event = Event.objects.order_by("-transaction_id", "-id").first()
    assert f'href="{timeline(event.aggregate_id)}#v{event.version}"' in page


def test_home_rows_of_a_teller_link_to_the_api_not_the_admin(client, history):
    teller = User.objects.create_user("wb-teller")
    teller.groups.add(Group.objects.get(name="tellers"))
    client.force_login(teller)
    page = client.get("/").content.decode()
    account = AccountBalance.objects.order_by("owner").first()
    assert f'href="/api/accounts/{account.account_id}/events/" class="events-link"' in page
    assert "/admin/eventsourcing_app/event/timeline/" not in page


# Search and filters ---------------------------------------------------------------------------


def test_an_id_prefix_is_a_range_of_uuids():
    assert uuid_prefix_range("3f2a") == (
        uuid.UUID("3f2a0000-0000-0000-0000-000000000000"),
        uuid.UUID("3f2affff-ffff-ffff-ffff-ffffffffffff"),
    )
    assert uuid_prefix_range("3F2A-01")[0] == uuid.UUID("3f2a0100-0000-0000-0000-000000000000")
    assert uuid_prefix_range("seed-transfer-0") is None
    assert uuid_prefix_range("") is None


@pytest.mark.parametrize("length", [1, 4, 8, 13, 36])
def test_search_by_an_id_prefix_finds_the_aggregate(client, history, auditor, length):
    account = AccountBalance.objects.first().account_id
    prefix = str(account)[:length]
    page = client.get(EVENTS, {"q": prefix})
    expected = {e.pk for e in Event.objects.all() if str(e.aggregate_id).startswith(prefix)}
    assert expected
    assert rows_of(page) == expected or len(page.context["cl"].result_list) == 100
    assert {e.pk for e in Event.objects.filter(aggregate_id=account)} <= expected
    shown = rows_of(page)
    assert all(str(Event.objects.get(pk=pk).aggregate_id).startswith(prefix) for pk in shown)


def test_a_prefix_search_is_a_range_scan_not_a_text_match(client, history, auditor):
    prefix = str(AccountBalance.objects.first().account_id)[:8]
    with CaptureQueriesContext(connection) as queries:
        client.get(EVENTS, {"q": prefix})
    sql = " ".join(q["sql"] for q in queries.captured_queries if '"events"' in q["sql"])
    assert "LIKE" not in sql.upper()
    assert 'aggregate_id" >=' in sql
    assert 'aggregate_id" <=' in sql
    assert not any(
        "COUNT(*)" in q["sql"] and "LIMIT" not in q["sql"] for q in queries.captured_queries
    )


def test_a_prefix_of_nothing_finds_nothing_and_correlations_are_still_found(
    client, history, auditor
):
    taken = {str(e.aggregate_id)[0] for e in Event.objects.all()}
    unused = next(c for c in "0123456789abcdef" if c not in taken) if len(taken) < 16 else None
    if unused:
        assert not rows_of(client.get(EVENTS, {"q": unused}))
    trail = client.get(EVENTS, {"q": "seed-transfer-0"})
    assert rows_of(trail) == {e.pk for e in Event.objects.for_correlation("seed-transfer-0")}


def test_filter_by_user_reads_the_username_and_falls_back_to_the_user_id(client, db, auditor):
    ada = User.objects.create_user("ada")
    with metadata_context(user_id=str(ada.pk), username="ada"):
        named, _ = services.account_open(owner="Named", currency="EUR")
    with metadata_context(user_id=str(ada.pk)):  # recorded before usernames were
        older, _ = services.account_open(owner="Older", currency="EUR")
    with metadata_context(user_id="999999", username="bob"):
        services.account_open(owner="Bob's", currency="EUR")
    page = client.get(EVENTS, {"user": "ada"})
    assert rows_of(page) == set(
        Event.objects.filter(aggregate_id__in=[named.id, older.id]).values_list("pk", flat=True)
    )
    assert 'href="?user=ada"' in page.content.decode()  # offered in the sidebar
    assert {e.aggregate_id for e in client.get(EVENTS, {"user": "bob"}).context["cl"].result_list}


def test_filter_by_a_date_range(client, history, auditor):
    days = sorted({e.created_at.date() for e in Event.objects.all()})
    first, last = days[0], days[-1]
    everything = client.get(EVENTS, {"created_from": first.isoformat(),
                                      "created_to": last.isoformat()})  # fmt: skip
    assert len(everything.context["cl"].result_list) == min(100, Event.objects.count())
    one_day = client.get(EVENTS, {"created_from": last.isoformat(), "created_to": last.isoformat()})
    start = dt.datetime.combine(last, dt.time(), tzinfo=dt.UTC)
    expected = Event.objects.filter(created_at__gte=start, created_at__lt=start + dt.timedelta(1))
    assert len(one_day.context["cl"].result_list) == min(100, expected.count())
    assert all(e.created_at.date() == last for e in one_day.context["cl"].result_list)
    html = one_day.content.decode()
    assert 'id="date-range-filter"' in html
    assert f'value="{last.isoformat()}"' in html
    after = client.get(EVENTS, {"created_from": (last + dt.timedelta(1)).isoformat()})
    assert not after.context["cl"].result_list
    kept = client.get(EVENTS, {"event_type": "bank.AccountOpened", "created_to": "2999-01-01"})
    assert all(e.event_type == "bank.AccountOpened" for e in kept.context["cl"].result_list)
    assert 'name="event_type" value="bank.AccountOpened"' in kept.content.decode()
    bad = client.get(EVENTS, {"created_from": "yesterday"}, follow=True)
    assert bad.status_code == 200
    assert "is not a date" in bad.content.decode()


def test_filters_and_prefix_search_keep_the_list_to_a_few_queries(client, history, auditor):
    prefix = str(AccountBalance.objects.first().account_id)[:4]
    params = {"q": prefix, "user": "wb-auditor", "created_from": "2000-01-01",
              "created_to": "2999-12-31", "since": "365d"}  # fmt: skip
    with CaptureQueriesContext(connection) as queries:
        assert client.get(EVENTS, params).status_code == 200
    assert len(queries) <= 10
    assert not any(
        "COUNT(*)" in q["sql"] and "LIMIT" not in q["sql"] for q in queries.captured_queries
    )


# Snapshots ------------------------------------------------------------------------------------


def test_the_snapshots_list_shows_every_snapshot_and_finds_by_prefix(client, history, auditor):
    if not Snapshot.objects.exists():
        for n, account in enumerate(AccountBalance.objects.all()):
            Snapshot.objects.create(aggregate_id=account.account_id, aggregate_type="bank.Account",
                                    version=n + 1, state={})  # fmt: skip
    total = Snapshot.objects.count()
    page = client.get(SNAPSHOTS)
    assert len(page.context["cl"].result_list) == min(total, 100)
    assert f"{total} snapshot" in page.content.decode()
    assert len(client.get(SNAPSHOTS, {"q": ""}).context["cl"].result_list) == min(total, 100)
    snapshot = Snapshot.objects.first()
    found = client.get(SNAPSHOTS, {"q": str(snapshot.aggregate_id)[:6]}).context["cl"].result_list
    assert snapshot in found
    assert all(str(s.aggregate_id).startswith(str(snapshot.aggregate_id)[:6]) for s in found)
    assert not client.get(SNAPSHOTS, {"q": "not-an-id"}).context["cl"].result_list
