"""The SQLite recorder: the embedded default, whose writers are serial.

Transactions begin IMMEDIATE (see the project's database options), so an append holds the
database's only write lock from its first statement: ids are committed in order, every row's
transaction is 0, and a log reader needs no bound. SQLite cannot notify: followers poll.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from django.db import IntegrityError

from eventsourcing_app.backends.base import (
    COLUMNS,
    INSERT_INTO,
    PREDECESSOR_CHECK,
    DjangoRecorder,
    dumps,
)
from eventsourcing_app.core.records import EventRecord, Position


class SQLiteRecorder(DjangoRecorder):
    """Record events in SQLite."""

    # The time as stored text, parsed by `datetime.fromisoformat` (in C), not by the converter
    # Django registers for the column's declared type (a regular expression a row).
    columns = COLUMNS.replace("created_at", "CAST(created_at AS TEXT)")

    def lock_stream(self, aggregate_id: uuid.UUID) -> None:
        """Nothing to do: the transaction already holds the database's write lock."""

    def _insert_statement(self, records: Sequence[EventRecord]) -> tuple[str, list]:
        first = records[0]
        aggregate_id = self._uuid_param(first.aggregate_id)
        created_at = self.connection.ops.adapt_datetimefield_value(first.created_at)
        row = "(" + ", ".join(["%s"] * 10) + ")"
        sql = (
            INSERT_INTO.format(table=self.table)
            + "SELECT * FROM (VALUES "
            + ", ".join([row] * len(records))
            + ") "
            + PREDECESSOR_CHECK.format(
                genesis="%s", table=self.table, param_uuid="%s", param_int="%s", param="%s"
            )
            + " RETURNING version, id, transaction_id"
        )
        params: list = []
        dumped: dict[int, str] = {}  # records of one append usually share one metadata dict
        for record in records:
            key = id(record.metadata)
            if key not in dumped:
                dumped[key] = dumps(record.metadata)
            params += (
                aggregate_id,
                record.aggregate_type,
                record.event_type,
                record.version,
                record.schema_version,
                dumps(record.data),
                dumped[key],
                created_at,
                record.hash,
                record.previous_hash,
            )
        return sql, params

    def _read_log(self, after: Position, limit: int, holdback: bool, select) -> list:
        """SQLite seeks a row-value comparison on its first column only, so a read far into the
        log would scan the index from the start. Read the rest of `after`'s transaction (on
        SQLite every row has transaction 0), then any later transactions, each by a seek."""
        rows = select("transaction_id = %s AND id > %s", "id", [after.transaction, after.id, limit])
        if len(rows) < limit:
            rows += select(
                "transaction_id > %s", "transaction_id, id", [after.transaction, limit - len(rows)]
            )
        return rows

    def count_between(self, after: Position, upto: Position, cap: int) -> int:
        if after.transaction != upto.transaction:
            return super().count_between(after, upto, cap)
        rows = self._fetch(  # one transaction (all of SQLite's log): a seek, as in read_log
            f"SELECT count(*) FROM (SELECT 1 FROM {self.table} "
            "WHERE transaction_id = %s AND id > %s AND id <= %s LIMIT %s) AS behind",
            [after.transaction, after.id, upto.id, cap],
        )
        return rows[0][0]

    def _is_version_conflict(self, exc: IntegrityError) -> bool:
        message = str(exc.__cause__ or exc)
        return "UNIQUE constraint failed" in message and f"{self.table}.version" in message
