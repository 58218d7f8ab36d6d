"""Statements written once and run on every request (a token check, an idempotency record, a
snapshot look-up), with their rows turned into model instances as the ORM would.

Django sends PostgreSQL each query with its values written in, so the server parses and plans
it anew every time: for the API's token check, a join of four tables, planning took 0.55 ms of
a 0.65 ms statement here. `fetch` prepares such a statement on each connection at its first use
(psycopg keeps it with the connection, so a pooled connection keeps it too) and binds the
values on the server; on SQLite, or with `PREPARE_STATEMENTS` off (a pooler in transaction mode
that cannot keep prepared statements), Django's cursor runs it as any other query.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from django.db import connections
from django.db.models import Field, Model

from eventsourcing_app import conf

# psycopg prepares what runs this many times on a connection: in effect only what asks for it.
NEVER_AUTOMATICALLY = 2**31 - 1


def fetch(using: str, sql: str, params: Sequence[Any]) -> list[tuple]:
    """Run one statement (its text the same on every call) and return its rows, if any."""
    connection = connections[using]
    if connection.vendor != "postgresql" or not conf.get("PREPARE_STATEMENTS"):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
    import psycopg

    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    raw = connection.connection
    if raw.prepare_threshold is None:
        # Django turns psycopg's preparing off; allow it, yet prepare only what asks for it.
        raw.prepare_threshold = NEVER_AUTOMATICALLY
    began = time.monotonic()
    # Text results, read by the loaders Django set on the connection: the same values as
    # through its own cursors.
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        cursor.execute(sql, params, prepare=True)
        rows = cursor.fetchall() if cursor.description else []
    if connection.queries_logged:  # counted like Django's own queries (tests, debug pages)
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - began:.3f}"})
    return rows


def instance(model: type[Model], fields: Sequence[Field], values: Sequence, using: str) -> Model:
    """The instance of a row's `values` for `fields`, converted as the ORM converts them
    (SQLite hands back dates as text and booleans as integers, JSON is text everywhere)."""
    connection = connections[using]
    converted = []
    for field, value in zip(fields, values, strict=True):
        column = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
        for convert in converters:
            value = convert(value, column, connection)
        converted.append(value)
    return model.from_db(using, [field.attname for field in fields], converted)
