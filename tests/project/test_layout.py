"""Promises of the project's layout: settings from the environment and a Django-free core."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DJANGO_FREE = [
    "eventsourcing_app.core.records",
    "eventsourcing_app.core.errors",
    "eventsourcing_app.core.hashchain",
    "eventsourcing_app.core.context",
    "eventsourcing_app.core.protocols",
    "eventsourcing_app.core.memory",
    "eventsourcing_app.core.store",
    "eventsourcing_app.core.verification",
    "eventsourcing_app.core.heads",
    "eventsourcing_app.core.snapshots",
    "eventsourcing_app.core.repository",
    "eventsourcing_app.core.mapper",
    "eventsourcing_app.domain",
    "eventsourcing_app.domain.aggregate",
    "eventsourcing_app.domain.codec",
    "eventsourcing_app.domain.events",
    "eventsourcing_app.domain.upcasting",
    "tests.domain.sample",
]


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("module", DJANGO_FREE)
def test_the_store_core_and_the_domain_import_no_django(module):
    result = python(
        f"import sys, {module}; print(sorted(m for m in sys.modules if m.startswith('django')))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


SETTINGS = (
    "import json, bankdemo.settings as s; db = s.DATABASES['default']; "
    "print(json.dumps({'debug': s.DEBUG, 'engine': db['ENGINE'], 'name': str(db['NAME']), "
    "'options': db.get('OPTIONS', {}), 'hosts': s.ALLOWED_HOSTS}))"
)


def test_without_environment_the_demo_runs_on_a_sqlite_file_in_wal_mode():
    result = python(SETTINGS)
    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout)
    assert settings["debug"] is True
    assert settings["engine"] == "django.db.backends.sqlite3"
    assert settings["name"] == str(ROOT / "db.sqlite3")
    assert "journal_mode=WAL" in settings["options"]["init_command"]


def test_database_url_and_hosts_come_from_the_environment():
    result = python(
        SETTINGS,
        DATABASE_URL="postgres://auditor@db.example:5433/ledger",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="s3cret",
        DJANGO_ALLOWED_HOSTS="bank.example, api.bank.example",
    )
    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout)
    assert settings["debug"] is False
    assert settings["engine"] == "django.db.backends.postgresql"
    assert settings["name"] == "ledger"
    assert settings["hosts"] == ["bank.example", "api.bank.example"]


def test_production_without_a_secret_key_refuses_to_start():
    result = python(SETTINGS, DJANGO_DEBUG="0")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG=0" in result.stderr
