"""The Merkle tree as stored: leaves and perfect-subtree nodes in the ledger tables.

Every proof and root is folded from O(log n) stored hashes fetched in one or two queries, so
proofs cost the same at a million events as at ten. Rows are only ever inserted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import connections

from eventsourcing_app.core.records import Position
from eventsourcing_app.ledger import merkle
from eventsourcing_app.ledger.merkle import NodeKey
from eventsourcing_app.models import LedgerLeaf, LedgerNode

LEAVES = LedgerLeaf._meta.db_table
NODES = LedgerNode._meta.db_table
LEAF_COLUMNS = "leaf_index, transaction_id, event_id, aggregate_id, version, hash"
LEAF_INSERT = ("leaf_index", "event_id", "transaction_id", "aggregate_id", "version", "hash")
NODE_INSERT = ("level", "node_index", "hash")
# Databases that load rows with COPY, and the column types it is told.
COPY_TYPES = {
    "postgresql": {
        "leaf_index": "int8",
        "event_id": "int8",
        "transaction_id": "int8",
        "aggregate_id": "uuid",
        "version": "int4",
        "hash": "bytea",
        "level": "int2",
        "node_index": "int8",
    }
}
# Keys per query when fetching nodes: well inside SQLite's parameter limit.
FETCH_CHUNK = 400


class LedgerDamaged(Exception):
    """A hash the tree needs is missing from the ledger tables."""


@dataclass(frozen=True)
class Leaf:
    """One sealed event: where it sits in the tree and the hash sealed for it."""

    index: int
    position: Position
    aggregate_id: uuid.UUID
    version: int
    hash: bytes

    def describe(self) -> str:
        return f"event {self.position.id} ({self.aggregate_id} v{self.version})"


class LedgerTree:
    """Read and extend the tree stored in one Django database."""

    def __init__(self, using: str = "default") -> None:
        self.using = using

    @property
    def connection(self):
        return connections[self.using]

    def size(self) -> int:
        """Return how many leaves are sealed."""
        rows = self._fetch(f"SELECT max(leaf_index) FROM {LEAVES}", [])
        return 0 if rows[0][0] is None else rows[0][0] + 1

    def frontier(self, size: int) -> merkle.Frontier:
        """Return the right edge of the tree of `size` leaves, ready to grow."""
        keys = merkle.Frontier.edge_keys(size)
        nodes = self.nodes(keys)
        return merkle.Frontier(size, [nodes[key] for key in keys])

    def root(self, size: int) -> bytes:
        """Return MTH of the first `size` leaves."""
        keys = merkle.perfect_parts(0, size)
        nodes = self.nodes(keys)
        return merkle.fold([nodes[key] for key in keys])

    def inclusion_path(self, index: int, size: int) -> list[bytes]:
        """Return PATH(index, D[size]) (RFC 9162 2.1.3.1)."""
        ranges = merkle.inclusion_ranges(index, size)
        return merkle.hashes_of(ranges, self.nodes(merkle.nodes_for(ranges)))

    def consistency_path(self, first: int, second: int) -> list[bytes]:
        """Return PROOF(first, D[second]) (RFC 9162 2.1.4.1)."""
        ranges = merkle.consistency_ranges(first, second)
        return merkle.hashes_of(ranges, self.nodes(merkle.nodes_for(ranges)))

    def leaf_of_event(self, event_id: int) -> Leaf | None:
        """Return the leaf sealed for event `event_id`, or None when it is not sealed."""
        rows = self._fetch(
            f"SELECT {LEAF_COLUMNS} FROM {LEAVES} WHERE event_id = %s",
            [event_id],
        )
        return _leaf(rows[0]) if rows else None

    def leaves_of_events(self, event_ids: Sequence[int]) -> dict[int, Leaf]:
        """Return the sealed leaves of the given events, by event id."""
        found: dict[int, Leaf] = {}
        for start in range(0, len(event_ids), FETCH_CHUNK):
            chunk = list(event_ids[start : start + FETCH_CHUNK])
            marks = ", ".join(["%s"] * len(chunk))
            rows = self._fetch(
                f"SELECT {LEAF_COLUMNS} FROM {LEAVES} WHERE event_id IN ({marks})",
                chunk,
            )
            found.update((row[2], _leaf(row)) for row in rows)
        return found

    def leaves_of_stream(
        self, aggregate_id: uuid.UUID, first: int | None = None, last: int | None = None
    ) -> dict[int, Leaf]:
        """Return the sealed leaves of one stream, by version; only `first`..`last` if given."""
        condition, params = "aggregate_id = %s", [self._stream(aggregate_id)]
        if first is not None and last is not None:
            condition += " AND version BETWEEN %s AND %s"
            params += [first, last]
        rows = self._fetch(f"SELECT {LEAF_COLUMNS} FROM {LEAVES} WHERE {condition}", params)
        return {leaf.version: leaf for leaf in map(_leaf, rows)}

    def sealed_head(self, aggregate_id: uuid.UUID) -> int | None:
        """Return the highest version sealed for one stream, or None when none is."""
        rows = self._fetch(
            f"SELECT max(version) FROM {LEAVES} WHERE aggregate_id = %s",
            [self._stream(aggregate_id)],
        )
        return rows[0][0]

    def _stream(self, aggregate_id: uuid.UUID):
        return aggregate_id if self.connection.features.has_native_uuid_field else aggregate_id.hex

    def leaves(self, after: int, limit: int) -> list[Leaf]:
        """Return up to `limit` leaves with an index above `after`, in order."""
        rows = self._fetch(
            f"SELECT {LEAF_COLUMNS} FROM {LEAVES} "
            "WHERE leaf_index > %s ORDER BY leaf_index LIMIT %s",
            [after, limit],
        )
        return [_leaf(row) for row in rows]

    def stored_nodes(self, after: NodeKey, limit: int) -> list[tuple[NodeKey, bytes]]:
        """Return up to `limit` stored nodes of level >= 1 after `after`, in key order."""
        rows = self._fetch(
            f"SELECT level, node_index, hash FROM {NODES} "
            "WHERE (level, node_index) > (%s, %s) ORDER BY level, node_index LIMIT %s",
            [*after, limit],
        )
        return [((level, index), bytes(value)) for level, index, value in rows]

    def nodes(self, keys: Iterable[NodeKey]) -> dict[NodeKey, bytes]:
        """Return the hashes of the given nodes; raise `LedgerDamaged` if any is missing."""
        keys = set(keys)
        leaves = sorted(index for level, index in keys if level == 0)
        inner = sorted(key for key in keys if key[0] > 0)
        found: dict[NodeKey, bytes] = {}
        for start in range(0, len(leaves), FETCH_CHUNK):
            chunk = leaves[start : start + FETCH_CHUNK]
            marks = ", ".join(["%s"] * len(chunk))
            rows = self._fetch(
                f"SELECT leaf_index, hash FROM {LEAVES} WHERE leaf_index IN ({marks})", chunk
            )
            found.update(((0, index), bytes(value)) for index, value in rows)
        for start in range(0, len(inner), FETCH_CHUNK):
            chunk = inner[start : start + FETCH_CHUNK]
            marks = " OR ".join(["(level = %s AND node_index = %s)"] * len(chunk))
            rows = self._fetch(
                f"SELECT level, node_index, hash FROM {NODES} WHERE {marks}",
                [part for key in chunk for part in key],
            )
            found.update(((level, index), bytes(value)) for level, index, value in rows)
        missing = keys - found.keys()
        if missing:
            level, index = min(missing)
            raise LedgerDamaged(f"the ledger lacks node {index} of level {level}")
        return found

    def insert(self, leaves: Sequence[tuple], nodes: Sequence[tuple[NodeKey, bytes]]) -> None:
        """Insert new leaves and the nodes they completed.

        A leaf is (index, event id, transaction id, aggregate id, version, hash).
        """
        node_rows = [(level, index, value) for (level, index), value in nodes]
        if self.connection.vendor in COPY_TYPES:
            self._copy(LEAVES, LEAF_INSERT, leaves)
            self._copy(NODES, NODE_INSERT, node_rows)
            return
        if not self.connection.features.has_native_uuid_field:
            leaves = [(*leaf[:3], leaf[3].hex, *leaf[4:]) for leaf in leaves]
        with self.connection.cursor() as cursor:
            for table, columns, rows in (
                (LEAVES, LEAF_INSERT, leaves),
                (NODES, NODE_INSERT, node_rows),
            ):
                if rows:
                    marks = ", ".join(["%s"] * len(columns))
                    cursor.executemany(
                        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
                    )

    def _copy(self, table: str, columns: tuple[str, ...], rows: Sequence[tuple]) -> None:
        """Load rows with binary COPY: several times faster than INSERTs on PostgreSQL."""
        if not rows:
            return
        connection = self.connection
        connection.ensure_connection()
        types = [COPY_TYPES[connection.vendor][column] for column in columns]
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        with (
            connection.wrap_database_errors,
            connection.connection.cursor() as cursor,
            cursor.copy(statement) as copy,
        ):
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)

    def _fetch(self, sql: str, params: list) -> list[tuple]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()


def _leaf(row) -> Leaf:
    aggregate_id = row[3] if isinstance(row[3], uuid.UUID) else uuid.UUID(row[3])
    return Leaf(
        index=row[0],
        position=Position(int(row[1]), row[2]),
        aggregate_id=aggregate_id,
        version=row[4],
        hash=bytes(row[5]),
    )
