"""seed_bank gives a newcomer users to log in with and a history worth browsing."""

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from bankdemo.models import AccountBalance, DailyTotal, TransferStatus
from eventsourcing_app.core.verification import verify_chains
from eventsourcing_app.models import Event
from eventsourcing_app.wiring import get_recorder

pytestmark = pytest.mark.usefixtures("log_db")


def seed(**options) -> str:
    out = StringIO()
    call_command("seed_bank", "--no-progress", stdout=out, **options)
    return out.getvalue()


def test_seed_bank_builds_a_browsable_history_once(settings):
    settings.DEBUG = True
    output = seed(accounts=4, events=120, transfers=2)
    password = output.split("user teller / password ")[1].split()[0]
    assert User.objects.get(username="teller").check_password(password)
    assert AccountBalance.objects.count() == 4
    deposits = Event.objects.filter(event_type="bank.MoneyDeposited")
    assert set(deposits.values_list("schema_version", flat=True)) <= {1, 2, 3}
    assert deposits.filter(metadata__imported=True).exists()
    assert TransferStatus.objects.filter(status__in=["completed", "failed"]).count() == 2
    assert DailyTotal.objects.exists()
    assert verify_chains(get_recorder()).intact
    events = Event.objects.count()
    assert "already seeded" in seed(accounts=4, events=120, transfers=2)
    assert Event.objects.count() == events


def test_passwords_are_printed_only_when_debugging(settings):
    settings.DEBUG = False
    assert "password" not in seed(accounts=2, events=5, transfers=0)


def passwords_in(output: str) -> dict[str, str]:
    return {
        line.split()[1]: line.split()[-1]
        for line in output.splitlines()
        if line.startswith("user ") and " / password " in line
    }


def test_seeding_again_keeps_the_users_their_passwords_and_their_sessions(settings):
    settings.DEBUG = True
    first = passwords_in(seed(accounts=2, events=5, transfers=0))
    assert set(first) == {"teller", "auditor", "privacy", "admin"}
    auditor = User.objects.get(username="auditor")
    client = Client()
    client.force_login(auditor)
    assert client.get("/admin/").status_code == 200

    again = seed(accounts=2, events=5, transfers=0)
    assert passwords_in(again) == {}  # nothing new, nothing printed
    for username in first:
        assert f"user {username}: exists, its password was kept" in again
        assert User.objects.get(username=username).check_password(first[username])
    assert client.get("/admin/").status_code == 200  # still logged in
    assert User.objects.get(username="auditor").is_staff
    assert User.objects.get(username="admin").is_superuser
    assert not User.objects.get(username="teller").is_staff


def test_passwords_are_printed_last_and_only_for_users_created_now(settings):
    settings.DEBUG = True
    User.objects.create_user("teller", password="chosen-by-the-teller")
    output = seed(accounts=2, events=5, transfers=0)
    lines = output.strip().splitlines()
    assert lines[-4:] == [
        "user teller: exists, its password was kept "
        "(python manage.py changepassword teller sets a new one)",
        f"user auditor / password {passwords_in(output)['auditor']}",
        f"user privacy / password {passwords_in(output)['privacy']}",
        f"user admin / password {passwords_in(output)['admin']}",
    ]
    assert lines[0].startswith("bank history: ")
    assert set(passwords_in(output)) == {"auditor", "privacy", "admin"}
    assert User.objects.get(username="teller").check_password("chosen-by-the-teller")
    assert User.objects.get(username="auditor").check_password(passwords_in(output)["auditor"])
