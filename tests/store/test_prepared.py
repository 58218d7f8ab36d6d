"""On PostgreSQL the store's statements are prepared once per connection, unless turned off."""

import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from bankdemo import services
from bankdemo.api.authentication import TokenAuthentication
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


def prepared(prefix: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", [prefix + "%"]
        )
        return cursor.fetchone()[0]


def load_twice() -> uuid.UUID:
    """Open an account through the bank's services, snapshot it, load it twice."""
    account, _ = services.account_open(owner="Prepared Owner", currency="EUR")
    services.account_deposit(account_id=account.id, amount="5.00")
    repository = services.accounts()
    repository.write_snapshot(repository.load(account.id))
    for _ in range(2):
        assert repository.load(account.id).balance == Decimal("5.00")
    return account.id


def test_the_token_check_and_the_snapshot_look_up_are_prepared_too():
    """The statements every API request runs (`eventsourcing_app.backends.statements`)."""
    fresh_connection()
    user = User.objects.create_user("prepared-teller")
    key = Token.objects.create(user=user).key
    with CaptureQueriesContext(connection) as queries:
        for _ in range(2):
            found, _ = TokenAuthentication().authenticate_credentials(key)
    assert found.pk == user.pk
    assert len(queries.captured_queries) == 2  # counted as Django counts its own
    load_twice()
    assert prepared("SELECT u.id, ") == 1
    assert prepared('SELECT "aggregate_id", "aggregate_type", "version"') == 1


def test_the_shared_statements_are_not_prepared_when_preparing_is_off(settings):
    settings.EVENTSOURCING = {"PREPARE_STATEMENTS": False}
    fresh_connection()
    load_twice()
    assert prepared('SELECT "aggregate_id", "aggregate_type", "version"') == 0
