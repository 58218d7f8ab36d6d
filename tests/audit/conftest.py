"""What the audit pages' tests share: a client logged in as an auditor, and a timeline cache
of replayed page states emptied around every test."""

import pytest

from eventsourcing_app.audit import paging
from tests.audit.test_admin import login


@pytest.fixture
def auditor(client):
    login(client, "auditor", "auditors")
    return client


@pytest.fixture(autouse=True)
def fresh_replay_cache():
    paging.CACHE.clear()
    yield
    paging.CACHE.clear()
