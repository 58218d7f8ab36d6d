"""seed_bank gives a newcomer users to log in with and a history worth browsing."""

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

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
