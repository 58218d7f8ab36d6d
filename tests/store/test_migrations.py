"""Migrations: a new install runs the final schema, and databases migrated before still migrate.

The NOTIFY trigger that an earlier 0004 added and 0005 dropped is gone from the history; a
database that ran both keeps its records of them, which Django leaves alone.
"""

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from tests.helpers import requires_postgresql

ROOT = Path(__file__).resolve().parents[2]


def test_the_app_migrates_in_ten_steps_to_its_final_schema():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    names = sorted(name for app, name in loader.disk_migrations if app == "eventsourcing_app")
    assert names == [
        "0001_initial",
        "0002_append_only_triggers",
        "0003_projection_checkpoints",
        "0004_checkpoint_changes",
        "0005_ledger",
        "0006_evidence_exports",
        "0007_rebuild_runs",
        "0008_rebuild_heartbeat",
        "0009_events_username_idx",
        "0010_personal_data_keys",
    ]


@requires_postgresql
@pytest.mark.django_db
def test_a_new_postgresql_install_has_no_notify_trigger():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'events'::regclass AND NOT tgisinternal"
        )
        triggers = sorted(name for (name,) in cursor.fetchall())
    assert triggers == ["events_append_only", "events_no_truncate"]


def manage(*args: str, database: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{database}"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_database_that_ran_the_dropped_notify_migrations_still_migrates(tmp_path):
    database = tmp_path / "old.sqlite3"
    assert manage("migrate", "-v0", database=database).returncode == 0
    with sqlite3.connect(database) as old:  # what a demo database of the earlier layout holds
        old.executemany(
            "INSERT INTO django_migrations (app, name, applied) VALUES (?, ?, datetime('now'))",
            [("eventsourcing_app", "0004_notify_on_append"),
             ("eventsourcing_app", "0005_notify_after_commit")],
        )  # fmt: skip
    checked = manage("migrate", "--check", database=database)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert manage("check", database=database).returncode == 0
