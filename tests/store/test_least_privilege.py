"""The application can run as a role that may only read and append events and the ledger.

Migrations run as the owning role; `manage.py grant_app_role` gives the application's role
what it needs. That role is refused UPDATE, DELETE and TRUNCATE on `events`, cannot disable
the triggers nor skip them with `session_replication_role`, and the whole bank works under it.
"""

import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from eventsourcing_app.core.records import NO_STREAM
from eventsourcing_app.wiring import get_event_store
from tests.helpers import deposits, raw_connection, requires_postgresql

pytestmark = [requires_postgresql, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]
REFUSED = [
    "UPDATE events SET event_type = 'x.Forged'",
    "DELETE FROM events",
    "TRUNCATE events",
    "ALTER TABLE events DISABLE TRIGGER ALL",
    "SET session_replication_role = replica",
    "UPDATE ledger_leaves SET hash = hash",
    "DELETE FROM ledger_nodes",
    "TRUNCATE ledger_digests",
    "ALTER TABLE ledger_leaves DISABLE TRIGGER ALL",
    "DELETE FROM checkpoint_changes",
    "UPDATE evidence_exports SET row_count = 0",
]


@pytest.fixture
def app_role():
    """A login role of its own, with the application's grants, dropped afterwards."""
    role = f"es_app_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{role}" LOGIN')
    call_command("grant_app_role", role, "--execute", stdout=open("/dev/null", "w"))  # noqa: SIM115
    yield role
    with connection.cursor() as cursor:
        cursor.execute(f'DROP OWNED BY "{role}"')
        cursor.execute(f'DROP ROLE "{role}"')


def connect_as(role: str) -> psycopg.Connection:
    return raw_connection(user=role, password=None, autocommit=True)


def url_as(role: str) -> str:
    settings = connection.settings_dict
    host, port = settings["HOST"] or "127.0.0.1", settings["PORT"] or "5432"
    return f"postgres://{quote(role)}@{host}:{port}/{quote(settings['NAME'])}"


@pytest.mark.parametrize("statement", REFUSED)
def test_the_application_role_cannot_change_events_or_bypass_their_triggers(app_role, statement):
    get_event_store().append(uuid.uuid4(), deposits("1.00"), expected_version=NO_STREAM,
                             aggregate_type="ledger.Account")  # fmt: skip
    with connect_as(app_role) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1


WORKLOAD = """
from decimal import Decimal
from django.core.management import call_command
from django.test import Client
from django.contrib.auth.models import User, Group
from bankdemo import services
a, _ = services.account_open(owner="Ada", currency="EUR")
b, _ = services.account_open(owner="Bob", currency="EUR")
services.account_deposit(account_id=a.id, amount="50.00")
services.transfer_request(source_id=a.id, destination_id=b.id, amount="20.00")
services.settle_transfers()
call_command("run_projections", "--once")
call_command("ledger_digest", "--no-progress")
call_command("rebuild_projections", "--no-progress")
call_command("snapshots", "--rebuild", "--no-progress")
call_command("verify_events", "--no-progress")
user = User.objects.create_user("role-teller", password="x")
user.groups.add(Group.objects.get(name="tellers"))
client = Client(HTTP_HOST="localhost")
client.force_login(user)
answer = client.post(f"/api/accounts/{b.id}/withdraw/", {"amount": "5.00"},
                     content_type="application/json")
assert answer.status_code == 200, answer.content
assert services.accounts().load(b.id).balance == Decimal("15.00")
print("the bank works")
"""


def test_the_whole_bank_works_under_the_application_role(app_role):
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", WORKLOAD],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": url_as(app_role),
            "DJANGO_SETTINGS_MODULE": "tests.settings",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the bank works" in result.stdout
