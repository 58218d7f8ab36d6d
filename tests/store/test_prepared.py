"""On PostgreSQL the store's statements are prepared once per connection, unless turned off."""

import pytest
from django.db import connection

from eventsourcing_app.core.records import NO_STREAM
from eventsourcing_app.wiring import get_event_store
from tests.helpers import deposits, new_id, requires_postgresql

pytestmark = [requires_postgresql, pytest.mark.django_db(transaction=True)]


def prepared_inserts() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements "
            "WHERE statement LIKE 'INSERT INTO events%%'"
        )
        return cursor.fetchone()[0]


def append_twice() -> None:
    store = get_event_store()
    account = new_id()
    store.append(account, deposits("1.00"), expected_version=NO_STREAM, aggregate_type="ledger.A")
    store.append(account, deposits("2.00"), expected_version=1, aggregate_type="ledger.A")
    assert [e.version for e in store.read_stream(account)] == [1, 2]


def fresh_connection() -> None:
    """Close the connection, and the pool it came from, so the next one has nothing prepared."""
    connection.close()
    if connection.pool is not None:
        connection.close_pool()


def test_appends_are_prepared_statements_by_default():
    fresh_connection()
    append_twice()
    assert prepared_inserts() == 1


def test_preparing_can_be_turned_off_for_poolers(settings):
    settings.EVENTSOURCING = {"PREPARE_STATEMENTS": False}
    fresh_connection()
    append_twice()
    assert prepared_inserts() == 0


def test_a_pooled_connection_keeps_its_prepared_statements():
    if connection.pool is None:
        pytest.skip("this run's database has no pool (DJANGO_DB_POOL_MAX=0)")
    fresh_connection()
    append_twice()
    connection.close()  # back to the pool, which hands the same server connection out again
    append_twice()
    assert prepared_inserts() == 1
