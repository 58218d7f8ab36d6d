"""Helpers for tests: which database runs, and small builders."""

import uuid

import pytest
from django.db import connection

from eventsourcing_app.core.records import NewEvent


def on_postgresql() -> bool:
    return connection.vendor == "postgresql"


requires_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL (concurrency, log order, NOTIFY, TRUNCATE); this run is on SQLite, "
    "and make test runs the suite on PostgreSQL too",
)


def deposits(*amounts: str) -> list[NewEvent]:
    return [NewEvent("ledger.MoneyDeposited", {"amount": amount}) for amount in amounts]


def new_id() -> uuid.UUID:
    return uuid.uuid4()
