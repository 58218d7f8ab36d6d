"""Promises of the project's layout: settings from the environment, a Django-free core, and a
reusable app that imports nothing of the demo."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "eventsourcing_app"
DJANGO_FREE_FOLDERS = ("core", "domain")


def _modules(folder: Path) -> list[str]:
    return sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in folder.rglob("*.py")
    )


# Every module of the core and domain folders, found on disk: a new module is covered at once.
DJANGO_FREE = [
    "eventsourcing_app",
    "eventsourcing_app.conf",
    *(module for folder in DJANGO_FREE_FOLDERS for module in _modules(APP / folder)),
    "tests.domain.sample",
]


def test_the_django_free_folders_hold_the_store_core():
    assert {"eventsourcing_app.core.store", "eventsourcing_app.core.memory"} <= set(DJANGO_FREE)


def test_the_reusable_app_knows_nothing_of_the_demo():
    importers = [
        str(path.relative_to(ROOT))
        for path in APP.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and any(
            name.split(".")[0] in {"bankdemo", "tests", "bench"}
            for name in (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
        )
    ]
    assert importers == []


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


PROXY = "import bankdemo.settings as s; print(repr(getattr(s, 'SECURE_PROXY_SSL_HEADER', None)))"
PRODUCTION = {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "s3cret"}


def test_in_production_no_proxy_header_is_trusted_unless_the_deployment_names_one():
    assert python(PROXY, **PRODUCTION).stdout.strip() == "None"
    named = python(PROXY, **PRODUCTION, DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    assert named.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')"
    wrong = python(PROXY, **PRODUCTION, DJANGO_SECURE_PROXY_SSL_HEADER="X Forwarded: yes")
    assert wrong.returncode != 0
    assert "DJANGO_SECURE_PROXY_SSL_HEADER must name an HTTP header" in wrong.stderr
