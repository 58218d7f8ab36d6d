"""The recorder of a database is picked by its kind; SQLite's needs no PostgreSQL driver."""

import ast
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from eventsourcing_app.backends import recorder_class
from eventsourcing_app.backends.postgresql import PostgreSQLRecorder
from eventsourcing_app.backends.sqlite import SQLiteRecorder
from eventsourcing_app.wiring import get_recorder

BACKENDS = Path(__file__).resolve().parents[2] / "eventsourcing_app" / "backends"


def test_each_database_gets_the_recorder_of_its_kind():
    expected = PostgreSQLRecorder if connection.vendor == "postgresql" else SQLiteRecorder
    assert recorder_class() is expected
    assert type(get_recorder()) is expected


def test_a_database_of_another_kind_is_refused_clearly(monkeypatch):
    monkeypatch.setattr(connection, "vendor", "oracle")
    with pytest.raises(ImproperlyConfigured, match="no recorder for the oracle database"):
        recorder_class()


@pytest.mark.parametrize("module", ["__init__.py", "base.py", "sqlite.py", "snapshots.py"])
def test_only_the_postgresql_backend_imports_psycopg(module):
    tree = ast.parse((BACKENDS / module).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert "psycopg" not in imported
