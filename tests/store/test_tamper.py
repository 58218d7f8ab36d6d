"""verify_events finds rows altered or removed behind the triggers' back."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from eventsourcing_app.core.records import NO_STREAM
from eventsourcing_app.models import Event
from eventsourcing_app.wiring import get_event_store
from tests.helpers import deposits, new_id, on_postgresql

pytestmark = pytest.mark.django_db


@pytest.fixture
def accounts():
    store = get_event_store()
    ids = [new_id(), new_id()]
    for account in ids:
        store.append(
            account,
            deposits("1.00", "2.00", "3.00"),
            expected_version=NO_STREAM,
            aggregate_type="ledger.Account",
        )
    return ids


def tamper(statement: str, params: list) -> None:
    """Run a change with the append-only triggers off (the test's transaction restores them)."""
    with connection.cursor() as cursor:
        if on_postgresql():
            cursor.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        else:
            cursor.execute("DROP TRIGGER events_no_update")
            cursor.execute("DROP TRIGGER events_no_delete")
        cursor.execute(statement, params)


def verify(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("verify_events", "--no-progress", *args, stdout=out)
    return out.getvalue()


def test_an_intact_log_verifies(accounts):
    assert "6 events in 2 streams checked, 0 broken: the log is intact." in verify()


def test_an_altered_amount_is_named(accounts):
    victim = Event.objects.get(aggregate_id=accounts[1], version=2)
    data = '{"amount": "2000.00"}'
    tamper("UPDATE events SET event_data = %s WHERE id = %s", [data, victim.pk])
    with pytest.raises(CommandError) as caught:
        verify()
    assert f"first broken: event {victim.pk} ({accounts[1]} v2)" in str(caught.value)
    assert "content does not match its hash" in str(caught.value)
    assert "the log is intact" in verify("--aggregate", str(accounts[0]))


def test_altered_metadata_is_found(accounts):
    victim = Event.objects.get(aggregate_id=accounts[0], version=1)
    tamper(
        "UPDATE events SET metadata = %s WHERE id = %s",
        ['{"user_id": "someone else"}', victim.pk],
    )
    with pytest.raises(CommandError, match=f"first broken: event {victim.pk} "):
        verify("--aggregate", str(accounts[0]))


def test_a_rewritten_hash_breaks_the_next_link(accounts):
    victim = Event.objects.get(aggregate_id=accounts[0], version=2)
    tamper("UPDATE events SET hash = %s WHERE id = %s", ["f" * 64, victim.pk])
    with pytest.raises(CommandError) as caught:
        verify()
    assert f"event {victim.pk} " in str(caught.value)


def test_a_removed_event_is_found(accounts):
    victim = Event.objects.get(aggregate_id=accounts[0], version=2)
    tamper("DELETE FROM events WHERE id = %s", [victim.pk])
    with pytest.raises(CommandError, match="version 3 where 2 was due: events are missing"):
        verify()


def test_a_bad_aggregate_argument_is_one_clear_line():
    with pytest.raises(CommandError, match="invalid UUID value"):
        verify("--aggregate", "not-a-uuid")


def test_a_stream_that_does_not_exist_exits_2_and_says_so(accounts):
    with pytest.raises(CommandError) as caught:
        verify("--aggregate", str(new_id()))
    assert caught.value.returncode == 2
    assert "does not exist" in str(caught.value)


def test_data_altered_to_a_bare_json_string_is_named_not_a_crash(accounts):
    victim = Event.objects.get(aggregate_id=accounts[0], version=3)
    tamper("UPDATE events SET event_data = %s WHERE id = %s", ['"forged"', victim.pk])
    with pytest.raises(CommandError) as caught:
        verify()
    assert f"first broken: event {victim.pk} " in str(caught.value)
