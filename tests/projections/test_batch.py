"""A batch's new rows: many go in by COPY on PostgreSQL, each value as the ORM would save it,
and read back the same as rows `bulk_create` wrote."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models import QuerySet

from eventsourcing_app.projections import base
from eventsourcing_app.projections.base import COPY_FROM_ROWS, Batch
from tests.helpers import requires_postgresql
from tests.projectionapp.models import Balance, DailyCount, Movement

SAMPLES = {
    models.CharField: 'Zoë \\t\\n, "quoted"',
    models.TextField: "line\\nnext\\\\",
    models.UUIDField: uuid.uuid4(),
    models.IntegerField: -7,
    models.BigIntegerField: 2**62,
    models.SmallIntegerField: -3,
    models.PositiveIntegerField: 12,
    models.PositiveBigIntegerField: 2**40,
    models.PositiveSmallIntegerField: 5,
    models.BooleanField: True,
    models.DecimalField: Decimal("-1234.50"),
    models.DateField: dt.date(2026, 2, 28),
    models.DateTimeField: dt.datetime(2026, 2, 28, 23, 59, 59, 999999, tzinfo=dt.UTC),
}


@requires_postgresql
@pytest.mark.django_db
@pytest.mark.parametrize("field_class", list(base._AS_GIVEN), ids=lambda cls: cls.__name__)
def test_what_copy_takes_as_given_is_what_the_orm_would_save(field_class):
    assert set(SAMPLES) == set(base._AS_GIVEN)
    options = {"max_length": 50} if field_class is models.CharField else {}
    if field_class is models.DecimalField:
        options = {"max_digits": 18, "decimal_places": 2}
    field = field_class(**options)
    value = SAMPLES[field_class]
    assert type(value) is base._AS_GIVEN[field_class]
    assert field.get_db_prep_save(value, connection) == value


def movement(number: int) -> Movement:
    return Movement(account_id=uuid.uuid4(), version=number, amount=Decimal(number) / 100,
                    event_id=10_000 + number)  # fmt: skip


@requires_postgresql
@pytest.mark.django_db
def test_many_new_rows_go_in_by_copy_and_read_back_as_bulk_create_s(monkeypatch):
    bulk_created = []
    bulk_create = QuerySet.bulk_create
    monkeypatch.setattr(QuerySet, "bulk_create", lambda self, objs, **options: (
        bulk_created.append(len(objs)) or bulk_create(self, objs, **options)))  # fmt: skip
    batch = Batch("default")
    rows = [movement(number) for number in range(COPY_FROM_ROWS)]
    for row in rows:
        batch.insert(row)
    batch.flush()
    assert bulk_created == []  # COPY, not the ORM's INSERT
    stored = list(Movement.objects.order_by("version").values_list(
        "account_id", "version", "amount", "event_id"))  # fmt: skip
    assert stored == [(r.account_id, r.version, r.amount, r.event_id) for r in rows]
    few = Batch("default")
    for number in range(COPY_FROM_ROWS, COPY_FROM_ROWS + 3):
        few.insert(movement(number))
    few.flush()
    assert bulk_created == []  # a few rows (an inline append's): one prepared INSERT
    assert Movement.objects.count() == COPY_FROM_ROWS + 3


@requires_postgresql
@pytest.mark.django_db
def test_values_the_orm_would_change_or_refuse_are_given_to_it():
    day = dt.date(2026, 3, 1)
    naive = dt.datetime(2026, 3, 1, 12, 0)  # the ORM makes it aware, with its warning
    batch = Batch("default")
    for offset in range(COPY_FROM_ROWS):
        batch.insert(DailyCount(day=day + dt.timedelta(days=offset), deposits=offset,
                                counted_at=naive))  # fmt: skip
    with pytest.warns(RuntimeWarning, match="naive datetime"):
        batch.flush()
    assert DailyCount.objects.filter(counted_at__isnull=False).count() == COPY_FROM_ROWS
    bad = Batch("default")
    for number in range(COPY_FROM_ROWS):
        bad.insert(Balance(account_id=uuid.uuid4(), balance=Decimal("NaN"), version=number))
    with pytest.raises(ValidationError, match="must be a decimal number"):
        bad.flush()


@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_database_error_in_a_copy_is_django_s_as_in_an_insert():
    batch = Batch("default")
    for number in range(COPY_FROM_ROWS):
        row = movement(number)
        row.event_id = 7  # unique: the second row breaks it
        batch.insert(row)
    with pytest.raises(IntegrityError, match="event_id"), transaction.atomic():
        batch.flush()
    assert not Movement.objects.exists()


def fields_of(row: models.Model) -> list:
    return [(f.name, getattr(row, f.attname), type(getattr(row, f.attname)))
            for f in type(row)._meta.concrete_fields]  # fmt: skip


@pytest.mark.django_db
def test_a_few_rows_are_read_and_upserted_as_the_orm_reads_and_upserts_them():
    """An inline append's rows go by statements of their own (`statements.SMALL_BATCH`):
    what they read is what `in_bulk` reads, what they write is what `bulk_create` writes."""
    kept = Balance.objects.create(
        account_id=uuid.uuid4(),
        owner="Kept",
        balance=Decimal("1.50"),
        version=1,
        updated_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
    )
    batch = Batch("default")
    missing = uuid.uuid4()
    batch.prefetch(Balance, [kept.account_id, missing])
    read = batch.get(Balance, kept.account_id)
    assert batch.get(Balance, missing) is None
    assert fields_of(read) == fields_of(Balance.objects.get(pk=kept.account_id))
    read.balance, read.version = Decimal("2.25"), 2
    batch.put(read)
    batch.put(Balance(account_id=missing, owner="New", balance=Decimal("0.10"), version=1))
    day = DailyCount(day=dt.date(2026, 3, 2), deposits=3)
    batch.put(day)
    batch.insert(movement(1))
    batch.flush()
    assert Balance.objects.get(pk=kept.account_id).balance == Decimal("2.25")
    assert fields_of(Balance.objects.get(pk=kept.account_id)) == fields_of(read)
    assert Balance.objects.get(pk=missing).owner == "New"
    assert DailyCount.objects.get(pk=day.day).deposits == 3
    assert Movement.objects.get(event_id=10_001).amount == Decimal("0.01")
    again = Batch("default")
    again.put(DailyCount(day=day.day, deposits=4))
    again.flush()
    assert DailyCount.objects.get(pk=day.day).deposits == 4  # a taken key updated, not doubled
    assert Balance.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_few_rows_that_break_a_constraint_raise_django_s_integrity_error():
    batch = Batch("default")
    batch.insert(movement(1))
    batch.insert(movement(1))  # the same event id twice
    with pytest.raises(IntegrityError), transaction.atomic():
        batch.flush()
    assert Movement.objects.count() == 0
