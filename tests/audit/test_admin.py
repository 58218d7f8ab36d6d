"""The audit UI in the admin: read-only for everyone, fast lists, timelines and trails, and
checkpoints that move only by a recorded rebuild."""

import uuid
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from bankdemo import seeding
from eventsourcing_app.models import CheckpointChange, Event, ProjectionCheckpoint

pytestmark = pytest.mark.usefixtures("log_db")
EVENTS = "/admin/eventsourcing_app/event/"
CHECKPOINTS = "/admin/eventsourcing_app/projectioncheckpoint/"


@pytest.fixture
def history():
    seeding.seed_history(accounts=3, events=40, progress=lambda n: None)
    seeding.seed_transfers(2)
    seeding.catch_up_projections()


def login(client, username, group=None, *, staff=True, superuser=False):
    user = User.objects.create_user(username, is_staff=staff, is_superuser=superuser)
    if group:
        user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    return user


def account_with_upcasts() -> uuid.UUID:
    return (
        Event.objects.filter(event_type="bank.MoneyDeposited", schema_version__lt=3)
        .values_list("aggregate_id", flat=True)
        .first()
    )


def test_nobody_may_add_change_or_delete_events(client, history):
    login(client, "root", superuser=True)
    event = Event.objects.first()
    assert client.get(f"{EVENTS}add/").status_code == 403
    page = client.get(f"{EVENTS}{event.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert client.post(f"{EVENTS}{event.pk}/delete/").status_code == 403
    assert b'name="action"' not in client.get(EVENTS).content


def test_the_event_list_costs_the_same_few_queries_for_any_number_of_rows(client, history):
    login(client, "auditor", "auditors")
    with CaptureQueriesContext(connection) as few:
        assert client.get(f"{EVENTS}?event_type=bank.AccountOpened").status_code == 200
    with CaptureQueriesContext(connection) as many:
        assert client.get(EVENTS).status_code == 200
    assert len(many) == len(few)
    assert len(many) <= 8
    assert not any(
        "COUNT(*)" in q["sql"] and "LIMIT" not in q["sql"] for q in many.captured_queries
    )


def test_search_finds_an_aggregate_or_a_correlation(client, history):
    login(client, "auditor", "auditors")
    account = account_with_upcasts()
    by_id = client.get(f"{EVENTS}?q={account}").content.decode()
    assert str(account)[:8] in by_id
    trail = client.get(f"{EVENTS}?q=seed-transfer-0").content.decode()
    assert "bank.TransferRequested" in trail
    assert 'field-event_type">bank.AccountOpened' not in trail


def test_the_timeline_shows_upcasts_states_diffs_the_chart_and_the_tamper_check(client, history):
    login(client, "auditor", "auditors")
    page = client.get(f"{EVENTS}timeline/{account_with_upcasts()}/").content.decode()
    assert "hash chain and ledger verified" in page  # the seed sealed the log
    assert "upcast" in page
    assert "<polyline" in page
    assert "es-old" in page  # a before -> after diff


def test_point_in_time_and_comparison(client, history):
    login(client, "auditor", "auditors")
    account = account_with_upcasts()
    state = client.get(f"{EVENTS}timeline/{account}/state/?at=2").content.decode()
    assert "State at version 2" in state
    compare = client.get(f"{EVENTS}timeline/{account}/compare/?a=2&b=4").content.decode()
    assert "Version 2" in compare
    assert "Version 4" in compare
    assert "What changed" in compare
    bad = client.get(f"{EVENTS}timeline/{account}/state/?at=yesterday-ish").content.decode()
    assert "neither a version nor a date-time" in bad


def test_a_correlation_trail_spans_aggregates(client, history):
    login(client, "auditor", "auditors")
    page = client.get(f"{EVENTS}correlation/seed-transfer-0/").content.decode()
    assert "bank.Transfer " in page
    assert "bank.Account " in page


def test_projection_status_and_snapshots_are_visible_to_auditors(client, history):
    login(client, "auditor", "auditors")
    status = client.get("/admin/eventsourcing_app/projectioncheckpoint/").content.decode()
    assert "bank.daily_totals" in status
    assert "bank.account_balances" in status
    assert client.get("/admin/eventsourcing_app/snapshot/").status_code == 200


def test_who_gets_into_the_audit_ui(client, history):
    assert client.get(EVENTS).status_code == 302  # anonymous: to the login page
    login(client, "teller", "tellers", staff=False)
    assert client.get(EVENTS).status_code == 302
    client.logout()
    login(client, "auditor", "auditors")
    assert client.get(EVENTS).status_code == 200
    assert client.get(f"{EVENTS}timeline/{uuid.uuid4()}/").status_code == 404


def checkpoint_rows() -> list[dict]:
    return list(ProjectionCheckpoint.objects.order_by("name").values())


def test_not_even_a_superuser_may_add_change_or_delete_a_checkpoint(client, history):
    login(client, "root", superuser=True)
    daily = ProjectionCheckpoint.objects.get(name="bank.daily_totals")
    before = checkpoint_rows()
    change = reverse("admin:eventsourcing_app_projectioncheckpoint_change", args=[daily.pk])
    page = client.get(change)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    moved_back = {"name": daily.name, "position_transaction": daily.position_transaction,
                  "position_id": daily.position_id - 70, "status": "ok", "owner": ""}  # fmt: skip
    assert client.post(change, moved_back).status_code == 403
    delete = reverse("admin:eventsourcing_app_projectioncheckpoint_delete", args=[daily.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert client.post(f"{CHECKPOINTS}add/", {**moved_back, "name": "forged"}).status_code == 403
    changelist = client.get(CHECKPOINTS).content.decode()
    assert 'value="delete_selected"' not in changelist
    bulk_delete = {"action": "delete_selected", "_selected_action": [daily.pk], "post": "yes"}
    assert client.post(CHECKPOINTS, bulk_delete).status_code in (200, 302)
    assert checkpoint_rows() == before
    assert not CheckpointChange.objects.exists()


def test_only_superusers_are_offered_the_rebuild(client, history):
    login(client, "auditor", "auditors")
    assert 'name="action"' not in client.get(CHECKPOINTS).content.decode()
    rebuild = {"action": "rebuild_projection", "_selected_action": ["bank.daily_totals"],
               "confirmed": "yes"}  # fmt: skip
    client.post(CHECKPOINTS, rebuild)
    assert not CheckpointChange.objects.exists()


def test_the_projections_page_shows_the_checkpoint_changes(client, history):
    call_command("rebuild_projections", "bank.daily_totals", "--no-progress", "--by", "oncall",
                 "--reason", "replay after the fix", stdout=StringIO())  # fmt: skip
    change = CheckpointChange.objects.get()
    login(client, "auditor", "auditors")
    page = client.get(CHECKPOINTS).content.decode()
    changes = page.split('id="checkpoint-changes"')[1].split("</table>")[0]
    assert "<td>bank.daily_totals</td><td>rebuild</td>" in changes
    assert f"{change.from_position} &rarr; {change.to_position}" in changes
    assert "<td>oncall</td><td>replay after the fix</td>" in changes
    listed = client.get("/admin/eventsourcing_app/checkpointchange/").content.decode()
    assert "replay after the fix" in listed
