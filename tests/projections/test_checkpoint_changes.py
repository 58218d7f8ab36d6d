"""The record of checkpoint changes is append-only: the model, its querysets and the triggers."""

import pytest
from django.db import DatabaseError, connection, transaction

from eventsourcing_app.core.errors import AppendOnlyError
from eventsourcing_app.core.records import START, Position
from eventsourcing_app.following import checkpoints
from eventsourcing_app.models import CheckpointChange
from tests.helpers import requires_postgresql

pytestmark = pytest.mark.django_db


@pytest.fixture
def change() -> CheckpointChange:
    return checkpoints.record_change(
        "bank.daily_totals",
        CheckpointChange.REBUILD,
        START,
        Position(0, 70),
        by="ada",
        reason="totals doubled",
        using="default",
    )


def recorded() -> list[tuple]:
    return list(
        CheckpointChange.objects.order_by("id").values_list(
            "id", "checkpoint", "from_id", "to_id", "changed_by", "reason", "changed_at"
        )
    )


def test_the_model_and_its_querysets_refuse_to_change_a_recorded_change(change):
    before = recorded()
    change.to_id = 0
    with pytest.raises(AppendOnlyError, match="append-only"):
        change.save()
    with pytest.raises(AppendOnlyError, match="append-only"):
        change.delete()
    with pytest.raises(AppendOnlyError):
        CheckpointChange.objects.filter(pk=change.pk).update(changed_by="nobody")
    with pytest.raises(AppendOnlyError):
        CheckpointChange.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        CheckpointChange.objects.bulk_update([change], ["to_id"])
    assert recorded() == before


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE checkpoint_changes SET changed_by = 'nobody' WHERE id = %s",
        "UPDATE checkpoint_changes SET to_id = 0 WHERE id = %s",
        "DELETE FROM checkpoint_changes WHERE id = %s",
    ],
)
def test_raw_sql_cannot_update_or_delete_a_recorded_change(change, statement):
    before = recorded()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement, [change.pk])
    assert recorded() == before


@requires_postgresql
def test_truncate_is_refused_on_postgresql(change):
    before = recorded()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL eventsourcing.allow_truncate = 'off'")
        with pytest.raises(DatabaseError, match="TRUNCATE refused"), transaction.atomic():
            cursor.execute("TRUNCATE checkpoint_changes")
    assert recorded() == before
