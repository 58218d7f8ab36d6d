"""The grants of a least-privilege PostgreSQL role for the application.

The role that runs migrations owns the tables; the application connects as another role that
can read and write the read models, checkpoints, snapshots and the project's other tables, but
may only SELECT and INSERT events and the other append-only tables (the ledger, the records of
checkpoint changes and of evidence exports). Not owning them, it cannot disable their
triggers, and not being a superuser, it cannot set `session_replication_role` to skip them.
"""

from __future__ import annotations

from eventsourcing_app.models import (
    CheckpointChange,
    Event,
    EvidenceExport,
    LedgerDigest,
    LedgerLeaf,
    LedgerNode,
)

APPEND_ONLY = (Event, LedgerLeaf, LedgerNode, LedgerDigest, CheckpointChange, EvidenceExport)


def app_role_grants(connection, role: str) -> list[str]:
    """Return the statements that give `role` what the application needs, in the schema of
    `connection` (run them as the tables' owner)."""
    quote = connection.ops.quote_name
    name = quote(role)
    append_only = ", ".join(quote(model._meta.db_table) for model in APPEND_ONLY)
    database = quote(connection.settings_dict["NAME"])
    return [
        f"GRANT CONNECT ON DATABASE {database} TO {name}",
        f"GRANT USAGE ON SCHEMA public TO {name}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {name}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {name}",
        f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {append_only} FROM {name}",
        # Tables that later migrations create (run by the owner) are granted the same way.
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {name}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {name}",
    ]
