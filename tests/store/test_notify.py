"""On PostgreSQL, listeners hear of an append once it has committed, and never of a rollback."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import psycopg
import pytest
from django.db import connection, transaction

from eventsourcing_app.backends import postgresql
from eventsourcing_app.backends.postgresql import ANNOUNCER_NAME, NOTIFY_CHANNEL, Announcer
from eventsourcing_app.core.records import NO_STREAM
from eventsourcing_app.wiring import get_event_store
from tests.helpers import deposits, new_id, requires_postgresql
from tests.reliability.served import production_environment

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


def announcer_sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
            "AND datname = current_database()",
            [ANNOUNCER_NAME],
        )
        return cursor.fetchone()[0]


def until(condition, seconds: float = Announcer.IDLE_SECONDS + 5) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_appends_are_announced_from_a_session_of_their_own_that_ends_when_idle(listener):
    store = get_event_store()
    stream = new_id()
    store.append(stream, deposits(1), expected_version=NO_STREAM, aggregate_type="t.A")
    assert until(lambda: announcer_sessions() == 1)  # not the append's own session
    assert heard(listener) == 1
    for version in range(1, 6):
        store.append(stream, deposits(1), expected_version=version, aggregate_type="t.A")
    assert heard(listener) >= 1  # how many: the sharing test below
    assert until(lambda: announcer_sessions() == 0)  # idle: no session holds the database
    store.append(stream, deposits(1), expected_version=6, aggregate_type="t.A")
    assert heard(listener) == 1  # and the next append starts it again


def test_wake_ups_while_a_notify_is_on_its_way_share_the_next(monkeypatch):
    sent, release = [], threading.Event()

    class HeldConnection:  # the server's side is the tests above; this is the thread's logic
        def execute(self, sql, params):
            sent.append(params)
            release.wait(10)

        def close(self):
            pass

    monkeypatch.setattr(postgresql.psycopg, "connect", lambda **params: HeldConnection())
    announcer = Announcer({})
    announcer.wake()
    assert until(lambda: len(sent) == 1)  # the first NOTIFY is on its way, held there
    for _ in range(5):
        announcer.wake()
    release.set()
    assert announcer.flush(10)
    assert sent == [[NOTIFY_CHANNEL], [NOTIFY_CHANNEL]]  # the five shared one


CHILD = """
import uuid, django
django.setup()
from eventsourcing_app.core.records import NO_STREAM, NewEvent
from eventsourcing_app.wiring import get_event_store
get_event_store().append(uuid.uuid4(), [NewEvent("t.Happened", {"n": 1})],
                         expected_version=NO_STREAM, aggregate_type="t.A")
"""


def test_a_process_that_ends_right_after_its_append_still_announces_it(listener):
    done = subprocess.run([sys.executable, "-c", CHILD], env=production_environment(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert heard(listener) == 1  # its announcer was flushed at exit
