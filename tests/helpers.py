"""Helpers for tests: which database runs, and small builders."""

import uuid

import psycopg
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


def raw_connection(**overrides) -> psycopg.Connection:
    """Open a psycopg connection of its own, outside Django, to the test database (or to the
    database, as the user, ... that `overrides` name)."""
    params = connection.get_connection_params()
    for key in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(key, None)
    return psycopg.connect(**{**params, **overrides})
