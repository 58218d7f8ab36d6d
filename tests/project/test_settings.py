"""App settings: one dict with its defaults, unknown keys refused at start-up, the brokers'
address from the environment first."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks

from eventsourcing_app import conf
from eventsourcing_app.checks import check_settings


def test_every_setting_has_its_default_when_the_project_sets_none(settings, monkeypatch):
    settings.EVENTSOURCING = {}
    for variable in conf.ENVIRONMENT.values():
        monkeypatch.delenv(variable, raising=False)
    assert {name: conf.get(name) for name in conf.DEFAULTS} == conf.DEFAULTS


def test_a_project_setting_wins_over_the_default(settings):
    settings.EVENTSOURCING = {"REBUILD_BATCH_SIZE": 250}
    assert conf.get("REBUILD_BATCH_SIZE") == 250


@pytest.mark.django_db
def test_an_unknown_key_is_a_system_check_error_naming_it_and_the_known_ones(settings):
    settings.EVENTSOURCING = {"SNAPSHOT_INTERVAL": 50, "SNAPSHOT_INTERVALL": 50}
    [error] = check_settings()
    assert error.id == "eventsourcing.E003"
    assert error.level == checks.ERROR
    assert "'SNAPSHOT_INTERVALL'" in error.msg
    assert "SNAPSHOT_INTERVAL," in error.hint
    assert "KAFKA_BOOTSTRAP_SERVERS" in error.hint
    registered = checks.run_checks(tags=["eventsourcing"])
    assert "eventsourcing.E003" in [message.id for message in registered]


def test_known_keys_pass_the_check(settings):
    settings.EVENTSOURCING = {"SNAPSHOT_INTERVAL": 50, "KAFKA_TOPIC": "t"}
    assert check_settings() == []


def test_reading_a_setting_that_does_not_exist_is_a_programming_error():
    with pytest.raises(KeyError, match="NO_SUCH_SETTING"):
        conf.get("NO_SUCH_SETTING")


def test_the_brokers_come_from_the_environment_before_the_dict(settings, monkeypatch):
    settings.EVENTSOURCING = {"KAFKA_BOOTSTRAP_SERVERS": "dict-broker:9092"}
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert conf.get("KAFKA_BOOTSTRAP_SERVERS") == "dict-broker:9092"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "env-broker:9092")
    assert conf.get("KAFKA_BOOTSTRAP_SERVERS") == "env-broker:9092"


def test_the_poll_interval_follows_the_database_unless_set(settings):
    settings.EVENTSOURCING = {}
    expected = 5.0 if _vendor() == "postgresql" else 0.5
    assert conf.poll_interval() == expected
    settings.EVENTSOURCING = {"POLL_INTERVAL": 2}
    assert conf.poll_interval() == 2


def _vendor() -> str:
    from django.db import connection

    return connection.vendor


def _sqlite_synchronous(tmp_path, value: str | None) -> subprocess.CompletedProcess:
    """`PRAGMA synchronous` of the demo's own SQLite database, read by a fresh process."""
    env = {key: item for key, item in os.environ.items() if key != "DATABASE_URL"}
    env.pop("SQLITE_SYNCHRONOUS", None)
    if value is not None:
        env["SQLITE_SYNCHRONOUS"] = value
    env["DJANGO_SETTINGS_MODULE"] = "bankdemo.settings"
    code = (
        "import django, sys; from django.conf import settings; "
        f"settings.DATABASES['default']['NAME'] = {str(tmp_path / 'db.sqlite3')!r}; "
        "django.setup(); from django.db import connection; cursor = connection.cursor(); "
        "cursor.execute('PRAGMA synchronous'); print(cursor.fetchone()[0])"
    )
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, cwd=settings_root(), timeout=60)  # fmt: skip


def settings_root() -> str:
    return str(Path(__file__).resolve().parents[2])


def test_the_demo_s_sqlite_database_syncs_every_commit_unless_told_otherwise(tmp_path):
    """An audit store loses no committed event on a power cut: synchronous=FULL (2) by default,
    NORMAL (1) only when asked, anything else refused by name."""
    assert _sqlite_synchronous(tmp_path, None).stdout.strip() == "2"
    assert _sqlite_synchronous(tmp_path, "normal").stdout.strip() == "1"
    refused = _sqlite_synchronous(tmp_path, "off")
    assert refused.returncode != 0
    assert "SQLITE_SYNCHRONOUS='OFF': use one of FULL, EXTRA, NORMAL" in refused.stderr
