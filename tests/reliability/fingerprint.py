"""Read the events table exactly as stored, to prove that something left it untouched."""

import hashlib
import uuid

from django.db import connection

from eventsourcing_app.models import Event

COLUMNS = (
    "id, transaction_id, aggregate_id, aggregate_type, event_type, version, schema_version, "
    "CAST(event_data AS TEXT), CAST(metadata AS TEXT), created_at, hash, previous_hash"
)


def stored_rows(aggregate_id: uuid.UUID | None = None) -> list[tuple]:
    """Return the rows of the events table (of one stream) as the database holds them.

    JSON columns are read as text, so a rewrite that keeps the value but not the bytes shows.
    """
    sql, params = f"SELECT {COLUMNS} FROM events", []
    if aggregate_id is not None:
        sql += " WHERE aggregate_id = %s"
        params.append(
            Event._meta.get_field("aggregate_id").get_db_prep_value(aggregate_id, connection)
        )
    with connection.cursor() as cursor:
        cursor.execute(sql + " ORDER BY id", params)
        return cursor.fetchall()


def log_fingerprint() -> str:
    """Return a SHA-256 over every stored event row."""
    return hashlib.sha256(repr(stored_rows()).encode()).hexdigest()
