"""Stored events cannot change: the model, its querysets and the database triggers refuse."""

import pytest
from django.db import DatabaseError, connection, transaction

from eventsourcing_app.core.errors import AppendOnlyError
from eventsourcing_app.core.records import NO_STREAM
from eventsourcing_app.models import Event, Snapshot
from eventsourcing_app.wiring import get_event_store
from tests.helpers import deposits, new_id, on_postgresql, requires_postgresql

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored_event():
    account = new_id()
    get_event_store().append(
        account,
        deposits("1.00", "2.00"),
        expected_version=NO_STREAM,
        aggregate_type="ledger.Account",
    )
    return Event.objects.get(aggregate_id=account, version=1)


def snapshot_of_events():
    return list(Event.objects.order_by("id").values_list("id", "version", "event_data", "hash"))


def test_the_model_refuses_to_change_or_delete_a_stored_event(stored_event):
    before = snapshot_of_events()
    stored_event.event_data = {"amount": "1000000.00"}
    with pytest.raises(AppendOnlyError, match="append-only"):
        stored_event.save()
    with pytest.raises(AppendOnlyError, match="append-only"):
        stored_event.delete()
    assert snapshot_of_events() == before


def test_the_model_refuses_new_rows_that_bypass_the_store():
    with pytest.raises(AppendOnlyError, match=r"EventStore\.append"):
        Event(aggregate_id=new_id(), version=1, event_type="ledger.X", event_data={}).save()
    with pytest.raises(AppendOnlyError, match=r"EventStore\.append"):
        Event.objects.bulk_create([Event(aggregate_id=new_id(), version=1)])
    assert Event.objects.count() == 0


def test_querysets_refuse_bulk_changes(stored_event):
    before = snapshot_of_events()
    with pytest.raises(AppendOnlyError):
        Event.objects.filter(pk=stored_event.pk).update(event_data={})
    with pytest.raises(AppendOnlyError):
        Event.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        Event.objects.bulk_update([stored_event], ["event_data"])
    assert snapshot_of_events() == before


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET event_data = event_data WHERE id = %s",
        "UPDATE events SET version = version + 10 WHERE id = %s",
        "DELETE FROM events WHERE id = %s",
    ],
)
def test_raw_sql_cannot_update_or_delete_events(stored_event, statement):
    before = snapshot_of_events()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement, [stored_event.pk])
    assert snapshot_of_events() == before


@requires_postgresql
def test_truncate_is_refused_on_postgresql(stored_event):
    before = snapshot_of_events()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL eventsourcing.allow_truncate = 'off'")
        with pytest.raises(DatabaseError, match="TRUNCATE refused"), transaction.atomic():
            cursor.execute("TRUNCATE events")
    assert snapshot_of_events() == before


def test_the_triggers_are_installed_by_migration():
    with connection.cursor() as cursor:
        if on_postgresql():
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'events'::regclass "
                "AND NOT tgisinternal ORDER BY tgname"
            )
            expected = [("events_append_only",), ("events_no_truncate",)]
        else:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events' "
                "ORDER BY name"
            )
            expected = [("events_no_delete",), ("events_no_update",)]
        assert cursor.fetchall() == expected


def test_snapshots_may_be_deleted():
    Snapshot.objects.create(
        aggregate_id=new_id(), aggregate_type="ledger.Account", version=3, state={}
    )
    Snapshot.objects.all().delete()
    assert Snapshot.objects.count() == 0
