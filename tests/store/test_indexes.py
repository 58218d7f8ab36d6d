"""The reads an auditor makes hit their indexes, so they stay fast on millions of rows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from eventsourcing_app.core.context import metadata_context
from eventsourcing_app.core.records import NO_STREAM, Position
from eventsourcing_app.models import Event
from eventsourcing_app.wiring import get_event_store
from tests.helpers import deposits, new_id, on_postgresql

pytestmark = pytest.mark.django_db


def plan(queryset, *, without_sort: bool = False) -> str:
    if on_postgresql():
        with connection.cursor() as cursor:
            # Tiny test tables (and dead rows left by rolled-back tests) make a scan or a sort
            # look cheapest; ask whether the index can serve the query on its own.
            cursor.execute("SET LOCAL enable_seqscan = off")
            if without_sort:
                cursor.execute("SET LOCAL enable_sort = off")
    return queryset.explain()


def test_events_of_one_correlation_are_found_through_its_index():
    store = get_event_store()
    for correlation in ("transfer-1", "transfer-2"):
        with metadata_context(correlation_id=correlation):
            store.append(
                new_id(),
                deposits("1.00"),
                expected_version=NO_STREAM,
                aggregate_type="ledger.Account",
            )
    found = Event.objects.for_correlation("transfer-2")
    assert [e.metadata["correlation_id"] for e in found] == ["transfer-2"]
    assert "events_correlation_idx" in plan(found)


def test_a_stream_is_read_through_the_unique_index():
    queryset = Event.objects.filter(aggregate_id=new_id()).order_by("version")
    # SQLite names the index of a UNIQUE constraint itself.
    expected = "events_aggregate_version_uniq" if on_postgresql() else "(aggregate_id=?)"
    assert expected in plan(queryset)


def test_events_of_one_type_are_read_in_log_order_through_their_index():
    queryset = Event.objects.filter(event_type="ledger.MoneyDeposited").order_by(
        "transaction_id", "id"
    )
    assert "events_type_position_idx" in plan(queryset, without_sort=True)


@pytest.mark.skipif(on_postgresql(), reason="a SQLite query plan; PostgreSQL seeks row values")
def test_sqlite_reads_far_into_the_log_by_a_seek_not_a_scan_from_the_start():
    with CaptureQueriesContext(connection) as captured:
        get_event_store().recorder.read_log(Position(0, 500_000), 1000)
    first_read = captured.captured_queries[0]["sql"]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {first_read}")
        plan = " ".join(str(row[-1]) for row in cursor.fetchall())
    # A seek to the position on both columns, not a range on the first one from the log's start.
    assert "(transaction_id=? AND id>?)" in plan, plan
