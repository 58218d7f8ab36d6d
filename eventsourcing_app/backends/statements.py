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
from django.db.models.fields import AutoFieldMixin

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


# Batches of a model's rows up to this size are read and written by statements of their own,
# prepared once (an inline append's one or two rows); larger ones go through the ORM, whose
# statement for them would be used once.
SMALL_BATCH = 16


def rows_by_key(model: type[Model], keys: Sequence[Any], using: str) -> dict[Any, Model]:
    """The rows of `model` whose primary keys are `keys`, as `in_bulk` would give them."""
    connection = connections[using]
    meta, quote = model._meta, connection.ops.quote_name
    fields = list(meta.concrete_fields)
    pk = meta.pk
    values = [pk.get_db_prep_value(key, connection) for key in keys]
    columns = ", ".join(quote(field.column) for field in fields)
    if connection.vendor == "postgresql":
        condition, params = f"{quote(pk.column)} = ANY(%s)", [values]  # one statement for any n
    else:
        condition, params = f"{quote(pk.column)} IN ({', '.join(['%s'] * len(values))})", values
    sql = f"SELECT {columns} FROM {quote(meta.db_table)} WHERE {condition}"
    found = (instance(model, fields, row, using) for row in fetch(using, sql, params))
    return {row.pk: row for row in found}


def upsert(model: type[Model], rows: Sequence[Model], using: str) -> None:
    """Insert `rows`, or update those whose primary key is taken: `bulk_create` with
    `update_conflicts` on the primary key, each value prepared as it prepares it."""
    connection = connections[using]
    meta, quote = model._meta, connection.ops.quote_name
    fields = list(meta.concrete_fields)
    others = [quote(field.column) for field in fields if not field.primary_key]
    if others:
        action = "DO UPDATE SET " + ", ".join(f"{column} = EXCLUDED.{column}" for column in others)
    else:
        action = "DO NOTHING"
    _insert_rows(model, fields, rows, using, f" ON CONFLICT ({quote(meta.pk.column)}) {action}")


def new_row_fields(model: type[Model]) -> list[Field]:
    """The fields an INSERT of new rows writes: all but an automatic primary key, which the
    database hands out and which is not read back."""
    return [field for field in model._meta.local_concrete_fields
            if not (field.primary_key and isinstance(field, AutoFieldMixin))]  # fmt: skip


def insert(model: type[Model], rows: Sequence[Model], using: str) -> None:
    """Insert new `rows` (`new_row_fields`), each value prepared as `bulk_create` prepares it."""
    _insert_rows(model, new_row_fields(model), rows, using, "")


def _insert_rows(model, fields, rows, using: str, conflict: str) -> None:
    connection = connections[using]
    quote = connection.ops.quote_name
    params: list = []
    for row in rows:
        row._prepare_related_fields_for_save(operation_name="bulk_create")
        params += [field.get_db_prep_save(field.pre_save(row, True), connection)
                   for field in fields]  # fmt: skip
    mark = "(" + ", ".join(["%s"] * len(fields)) + ")"
    fetch(
        using,
        f"INSERT INTO {quote(model._meta.db_table)} "
        f"({', '.join(quote(field.column) for field in fields)}) "
        f"VALUES {', '.join([mark] * len(rows))}{conflict}",
        params,
    )
