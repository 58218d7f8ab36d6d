"""StoredEvent.from_record keeps every field of the record, each in its place."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from eventsourcing_app.core.records import EventRecord, StoredEvent


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
