"""Rows altered behind the append-only triggers, beyond tests/store/test_tamper.py: each is
named by verify_events and flagged on its aggregate's timeline in the audit UI.

Not committing tests: the triggers are switched off inside the test's transaction, which rolls
back with everything else.
"""

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection

from bankdemo import services
from eventsourcing_app.models import Event
from eventsourcing_app.projections import registry
from eventsourcing_app.projections.rebuild import rebuild
from eventsourcing_app.wiring import get_event_store
from tests.store.test_tamper import tamper

pytestmark = pytest.mark.django_db
EVENTS = "/admin/eventsourcing_app/event/"


@pytest.fixture
def account():
    """An account of five events (opened, three deposits, a withdrawal) and a bystander."""
    opened, _ = services.account_open(owner="Ada", currency="EUR")
    for amount in ("1.00", "2.00", "3.00"):
        services.account_deposit(account_id=opened.id, amount=amount)
    services.account_withdraw(account_id=opened.id, amount="0.50")
    bystander, _ = services.account_open(owner="Bob", currency="EUR")
    services.account_deposit(account_id=bystander.id, amount="9.00")
    return opened.id


def event(account, version: int) -> Event:
    return Event.objects.get(aggregate_id=account, version=version)


def verify_events() -> str:
    out = StringIO()
    call_command("verify_events", "--no-progress", stdout=out)
    return out.getvalue()


# Each alteration returns the first event it breaks, as (id, version) after the alteration.


def swap_versions(account) -> tuple[int, int]:
    """Put events v2 and v3 in each other's place."""
    second, third = event(account, 2).pk, event(account, 3).pk
    update = "UPDATE events SET version = %s WHERE id = %s"
    tamper(update, [99, second])  # the triggers stay off for the rest of the test
    with connection.cursor() as cursor:
        cursor.execute(update, [2, third])
        cursor.execute(update, [3, second])
    return third, 2


def rewrite(column: str, value):
    def alter(account) -> tuple[int, int]:
        victim = event(account, 3).pk
        tamper(f"UPDATE events SET {column} = %s WHERE id = %s", [value, victim])
        return victim, 3

    return alter


def remove_middle(account) -> tuple[int, int]:
    tamper("DELETE FROM events WHERE id = %s", [event(account, 3).pk])
    return event(account, 4).pk, 4


MISMATCH = "its content does not match its hash: the row was altered"
ALTERATIONS = {
    "versions swapped": (swap_versions, "its previous_hash does not match the event before it"),
    "data": (rewrite("event_data", '{"amount": "2000.00", "currency": "EUR", '
                     '"transfer_id": null}'), MISMATCH),
    "metadata": (rewrite("metadata", '{"user_id": "mallory"}'), MISMATCH),
    "event type": (rewrite("event_type", "bank.MoneyWithdrawn"), MISMATCH),
    "schema version": (rewrite("schema_version", 2), MISMATCH),
    "time": (rewrite("created_at", "2001-01-01 00:00:00"), MISMATCH),
    "row removed": (remove_middle, "version 4 where 3 was due: events are missing"),
}  # fmt: skip


@pytest.mark.parametrize("alteration", ALTERATIONS)
def test_an_altered_row_is_reported_and_flagged_on_its_timeline(client, account, alteration):
    alter, reason = ALTERATIONS[alteration]
    assert "hash chain verified" in timeline(client, account)
    assert "the log is intact" in verify_events()
    victim, version = alter(account)
    first = f"event {victim} ({account} v{version}): {reason}"
    with pytest.raises(CommandError) as caught:
        verify_events()
    assert f"first broken: {first}" in str(caught.value)
    assert f"integrity broken: {first}" in timeline(client, account)


def timeline(client, account) -> str:
    client.force_login(User.objects.get_or_create(username="root", is_staff=True,
                                                  is_superuser=True)[0])  # fmt: skip
    response = client.get(f"{EVENTS}timeline/{account}/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.xfail(
    strict=True,
    reason="known gap: the last events of a stream have no successor whose link would break, "
    "and no stream length is kept outside the rows, so verify_events cannot see them removed",
)
def test_a_removed_last_event_is_reported(account):
    tamper("DELETE FROM events WHERE id = %s", [event(account, 5).pk])
    with pytest.raises(CommandError):
        verify_events()


def test_a_removed_last_event_shows_as_drift_of_the_inline_read_models(account):
    """What does see it: the read models kept the removed withdrawal, a replay does not.

    The function behind `rebuild_projections --verify`: the command starts from the log's
    committed head, and this test's events are not committed on PostgreSQL."""
    tamper("DELETE FROM events WHERE id = %s", [event(account, 5).pk])
    report = rebuild(registry.get("bank.account_balances"), get_event_store(), verify=True)
    assert report.difference_count == 2  # the live row and the replayed one
    assert any("balance=Decimal('5.500')" in line for line in report.differences)
