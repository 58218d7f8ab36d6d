"""Records: StoredEvent.from_record and the fast constructor keep every field in its place;
rows know their position."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest

from eventsourcing_app.core.records import (
    NO_STREAM,
    EventRecord,
    NewEvent,
    StoredEvent,
    stored_event,
)
from eventsourcing_app.models import Event
from eventsourcing_app.wiring import get_event_store


def test_from_record_copies_every_field_and_its_own_metadata():
    record = EventRecord(
        aggregate_id=uuid.uuid4(),
        aggregate_type="t.Aggregate",
        event_type="t.Happened",
        version=7,
        schema_version=2,
        data={"n": 1},
        metadata={"user": "ann"},
        created_at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
        hash="h" * 64,
        previous_hash="p" * 64,
    )
    stored = StoredEvent.from_record(record, id=41, transaction_id=900)
    for field in dataclasses.fields(EventRecord):
        assert getattr(stored, field.name) == getattr(record, field.name), field.name
    assert (stored.id, stored.transaction_id) == (41, 900)
    assert stored.metadata is not record.metadata


def test_the_fast_constructor_is_the_dataclass_s_own_field_for_field():
    names = [field.name for field in dataclasses.fields(StoredEvent)]
    values = [f"value of {name}" for name in names]  # each field a value of its own
    fast, slow = stored_event(*values), StoredEvent(*values)
    assert type(fast) is StoredEvent
    assert fast == slow
    assert [getattr(fast, name) for name in names] == values
    assert repr(fast) == repr(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.version = 2  # type: ignore[misc]


def test_a_stored_row_has_the_position_the_log_gave_its_event(log_db):
    stored = get_event_store().append(
        uuid.uuid4(), [NewEvent("t.Happened", {})], expected_version=NO_STREAM, aggregate_type="t.A"
    )
    row = Event.objects.get(id=stored[0].id)
    assert row.position == stored[0].position
    assert str(row.position) == f"{stored[0].transaction_id}-{stored[0].id}"
