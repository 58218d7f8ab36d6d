"""Production settings hold up, and a lost database is a clean 503, never a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.db import OperationalError

from bankdemo import services
from tests.api.conftest import staff

ROOT = Path(__file__).resolve().parents[2]


def test_production_settings_pass_the_deployment_checks(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            # As a deployment runs it: before the first migrate, on a database with no tables.
            "DATABASE_URL": f"sqlite:///{tmp_path / 'not-migrated.sqlite3'}",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "a-long-random-secret-key-" + "x" * 40,
            "DJANGO_ALLOWED_HOSTS": "bank.example",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # HSTS for subdomains and preloading are the operator's call (DJANGO_HSTS_* variables);
    # everything the project can decide for itself is set.
    decided = ("W004", "W008", "W009", "W012", "W016", "W018", "W020")
    assert not [code for code in decided if code in result.stderr + result.stdout]
    assert "drf_spectacular" not in result.stderr + result.stdout


@pytest.mark.django_db
def test_a_lost_database_is_a_503_without_a_traceback(client, monkeypatch):
    def unreachable(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(services, "account_open", unreachable)
    client.force_login(staff("teller", "tellers"))
    response = client.post(
        "/api/accounts/", {"owner": "Ada", "currency": "EUR"}, content_type="application/json"
    )
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert response["Retry-After"] == "5"
    assert b"Traceback" not in response.content


def test_a_server_error_in_production_is_logged_with_its_traceback_and_correlation_id():
    failing_request = (
        "from django.test import Client; from bankdemo import views\n"
        "def broken(*args, **kwargs): raise RuntimeError('the page broke: xyzzy')\n"
        "views.render = broken\n"
        "response = Client(raise_request_exception=False).get("
        "'/', secure=True, HTTP_X_CORRELATION_ID='corr-7f3a')\n"
        "print(response.status_code)\n"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", failing_request],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "a-long-random-secret-key-" + "x" * 40,
            "DJANGO_ALLOWED_HOSTS": "testserver",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip().splitlines()[-1] == "500", result.stderr
    logged = result.stderr
    assert "ERROR django.request [correlation corr-7f3a]: Internal Server Error: /" in logged
    assert "Traceback (most recent call last)" in logged
    assert "RuntimeError: the page broke: xyzzy" in logged
