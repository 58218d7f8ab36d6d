"""A Django app that turns PostgreSQL or SQLite into an append-only, tamper-evident event store."""
