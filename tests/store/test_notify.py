"""On PostgreSQL, listeners hear of an append once it has committed, and never of a rollback."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection, transaction

from eventsourcing_app.backends.postgresql import NOTIFY_CHANNEL
from eventsourcing_app.core.records import NO_STREAM
from eventsourcing_app.wiring import get_event_store
from tests.helpers import deposits, new_id, requires_postgresql

pytestmark = [requires_postgresql, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def listener():
    settings = connection.settings_dict
    params = {
        "dbname": settings["NAME"],
        "user": settings["USER"],
        "host": settings["HOST"],
        "port": settings["PORT"],
        "password": settings["PASSWORD"],
    }
    conn = psycopg.connect(
        autocommit=True, **{key: value for key, value in params.items() if value}
    )
    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
    yield conn
    conn.close()


def heard(conn: psycopg.Connection) -> int:
    return sum(1 for _ in conn.notifies(timeout=0.5, stop_after=5))


def test_a_committed_append_is_announced_after_its_commit(listener):
    store = get_event_store()
    with transaction.atomic():
        store.append(new_id(), deposits(1), expected_version=NO_STREAM, aggregate_type="t.A")
        assert heard(listener) == 0  # not while the transaction is open
    assert heard(listener) == 1


def test_a_rolled_back_append_is_never_announced(listener):
    store = get_event_store()
    with transaction.atomic():
        store.append(new_id(), deposits(1), expected_version=NO_STREAM, aggregate_type="t.A")
        transaction.set_rollback(True)
    assert heard(listener) == 0
