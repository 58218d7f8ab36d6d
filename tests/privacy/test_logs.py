"""The app's own logs never carry personal data: every record of every logger, from DEBUG up,
and what the management commands print, through an account's life from the API to its
erasure, name the owner nowhere."""

import logging
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from bankdemo import seeding, services
from bankdemo.domain import AccountOpened, BankAccount, Refusal
from bankdemo.models import AccountBalance
from eventsourcing_app.models import ProjectionCheckpoint
from eventsourcing_app.projections import Projection, handles
from eventsourcing_app.projections.worker import ProjectionWorker
from eventsourcing_app.wiring import get_event_store, get_repository
from tests.api.conftest import staff

pytestmark = pytest.mark.usefixtures("log_db")

OWNER = "Wendeline Grisewood-Tarrant"
FORMATTER = logging.Formatter()


@pytest.fixture
def logged(caplog):
    """Capture every record: each logger at DEBUG, those that do not propagate included."""
    caplog.set_level(logging.DEBUG)
    loggers = [
        (name, logger)
        for name, logger in list(logging.root.manager.loggerDict.items())
        if isinstance(logger, logging.Logger)
    ]
    for name, logger in loggers:
        if logger.level != logging.NOTSET:
            caplog.set_level(logging.DEBUG, logger=name)
    apart = [logger for _, logger in loggers if not logger.propagate]
    for logger in apart:
        logger.addHandler(caplog.handler)
    yield caplog
    for logger in apart:
        logger.removeHandler(caplog.handler)


def record_text(record: logging.LogRecord) -> str:
    """The record as any handler would write it: message, traceback and stack."""
    parts = [record.getMessage(), record.exc_text or "", record.stack_info or ""]
    if record.exc_info:
        parts.append(FORMATTER.formatException(record.exc_info))
    return "\n".join(parts)


def naming(records, value: str) -> list[str]:
    return [
        f"{record.name} {record.levelname}: {record_text(record)}"
        for record in records
        if value in record_text(record)
    ]


class Outputs:
    """Run management commands, keeping everything they print to stdout and stderr."""

    def __init__(self) -> None:
        self.printed: list[str] = []

    def __call__(self, *args: str) -> str:
        out, err = StringIO(), StringIO()
        call_command(*args, stdout=out, stderr=err)
        self.printed += [out.getvalue(), err.getvalue()]
        return out.getvalue()


@pytest.fixture
def teller():
    client = APIClient()
    client.force_authenticate(staff("teller", "tellers"))
    return client


def test_an_account_from_opening_to_erasure_logs_no_owner(logged, teller, tmp_path):
    command = Outputs()
    opened = teller.post("/api/accounts/", {"owner": OWNER, "currency": "EUR"}, format="json",
                         HTTP_IDEMPOTENCY_KEY="open-wendeline")  # fmt: skip
    assert opened.status_code == 201, opened.content
    account = opened.json()["id"]
    assert teller.get(f"/api/accounts/{account}/").json()["owner"] == OWNER
    assert teller.get(f"/api/accounts/{account}/events/").status_code == 200
    deposited = teller.post(f"/api/accounts/{account}/deposit/", {"amount": "5.00"}, format="json")
    assert deposited.status_code == 200, deposited.content
    refused = teller.post(f"/api/accounts/{account}/withdraw/", {"amount": "900.00"},
                          format="json")  # fmt: skip
    assert refused.status_code == 422
    assert refused.json()["code"] == "insufficient_funds"
    too_long = teller.post("/api/accounts/", {"owner": OWNER * 10, "currency": "EUR"},
                           format="json")  # fmt: skip
    assert too_long.status_code == 400
    with pytest.raises(Refusal):
        services.account_withdraw(account_id=account, amount="1000.00")

    assert seeding.catch_up_projections() > 0  # the async read models and the ledger
    command("rebuild_projections", "--no-progress", "--by", "test", "--reason", "logs")
    assert "matches a replay" in command("rebuild_projections", "--verify", "--no-progress")
    command("ledger_digest", "--no-progress", "--out", str(tmp_path / "digest.json"))
    command("verify_events", "--no-progress")
    said = command("forget_subject", account, "--reason", "art. 17", "--by", "dpo")
    assert "forgot the subject" in said
    get_repository(BankAccount).load(account)
    seeding.catch_up_projections()
    command("rebuild_projections", "--no-progress", "--by", "test", "--reason", "after")

    names = {record.name for record in logged.records}
    assert "django.request" in names  # the 4xx answers: a logger that does not propagate
    assert "eventsourcing.projections" in names  # the worker's pass, at INFO
    assert "eventsourcing.ledger" in names
    assert naming(logged.records, OWNER) == []
    assert [text for text in command.printed if OWNER in text] == []


def test_a_command_the_domain_refuses_logs_no_owner(logged):
    account, _ = services.account_open(owner=OWNER, currency="EUR")
    for refused in (
        lambda: services.account_withdraw(account_id=account.id, amount="1.00"),
        lambda: services.account_deposit(account_id=account.id, amount="-1"),
        lambda: services.account_close(account_id=account.id, reason=""),
        lambda: services.account_open(owner=OWNER, currency="XXX"),
    ):
        with pytest.raises(Refusal):
            refused()
    assert naming(logged.records, OWNER) == []


class QuotesOwner(Projection):
    """A read model with a bug: Python's message quotes the value the handler chokes on."""

    name = "test.quotes_owner"

    @handles(AccountOpened)
    def opened(self, event, batch):
        int(event.payload.owner)


def test_a_handler_error_that_quotes_the_owner_is_not_logged_with_it(logged):
    account, _ = services.account_open(owner=OWNER, currency="EUR")
    ProjectionWorker([QuotesOwner()], get_event_store(), owner="test-logs").run_once()
    failed = ProjectionCheckpoint.objects.get(name=QuotesOwner.name)
    assert OWNER in failed.last_error  # scrubbed by the erasure, as the tests of forget show
    call_command("forget_subject", str(account.id), "--reason", "art. 17", stdout=StringIO())
    assert OWNER not in ProjectionCheckpoint.objects.get(name=QuotesOwner.name).last_error
    assert naming(logged.records, OWNER) == []


def test_a_drifted_read_model_is_reported_without_the_owner(logged):
    account, _ = services.account_open(owner=OWNER, currency="EUR")
    AccountBalance.objects.filter(account_id=account.id).update(balance=7)
    out = StringIO()
    with pytest.raises(CommandError, match="read models differ"):
        call_command("rebuild_projections", "bank.account_balances", "--verify", "--no-progress",
                     stdout=out, stderr=out)  # fmt: skip
    assert str(account.id) in out.getvalue()  # the drifted row is named
    assert OWNER not in out.getvalue()
    assert naming(logged.records, OWNER) == []
