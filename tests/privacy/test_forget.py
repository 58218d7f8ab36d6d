"""`manage.py forget_subject SUBJECT --reason TEXT`: the key goes, the owner reads as erased
everywhere, every copy is gone from the database, and the chains, the ledger and a digest
taken before still verify."""

import json
import uuid
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from rest_framework.test import APIClient

from bankdemo import services
from bankdemo.domain import BankAccount
from bankdemo.models import AccountBalance, IdempotencyKey
from eventsourcing_app.core.errors import AggregateNotFound
from eventsourcing_app.core.personal import ERASED
from eventsourcing_app.core.records import NO_STREAM, NewEvent
from eventsourcing_app.core.store import EventStore
from eventsourcing_app.models import Event, PersonalDataKey, ProjectionCheckpoint, Snapshot
from eventsourcing_app.privacy.erasure import SUBJECT_FORGOTTEN
from eventsourcing_app.wiring import get_recorder, get_repository
from tests.api.conftest import staff

pytestmark = pytest.mark.usefixtures("log_db")

OWNER = "Zebedee Quillfeather-Marsh"
OTHER = "Philippa Oakhampton"


def forget(subject, reason="GDPR art. 17 request #4711", *extra) -> str:
    out = StringIO()
    call_command("forget_subject", str(subject), "--reason", reason, *extra, stdout=out)
    return out.getvalue()


def database_text() -> str:
    """Every row of every table of the database, as text."""
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                dump.append(" ".join(
                    bytes(value).decode("latin-1") if isinstance(value, (bytes, memoryview))
                    else str(value) for value in row
                ))  # fmt: skip
    return "\n".join(dump)


@pytest.fixture
def account():
    """An account with a history, a snapshot, a stored API response and a neighbour."""
    client = APIClient()
    client.force_authenticate(staff("teller", "tellers"))
    opened = client.post("/api/accounts/", {"owner": OWNER, "currency": "EUR"}, format="json",
                         HTTP_IDEMPOTENCY_KEY="open-zebedee")  # fmt: skip
    assert opened.status_code == 201, opened.content
    account_id = uuid.UUID(opened.json()["id"])
    for amount in ("10.00", "2.50", "7.25"):
        services.account_deposit(account_id=account_id, amount=amount)
    repository = get_repository(BankAccount)
    repository.write_snapshot(repository.load(account_id))
    # A stored response that quotes the owner (the bank's own responses carry ids only).
    IdempotencyKey.objects.create(
        user=User.objects.get(username="teller"), key="quoting", request_hash="0" * 64,
        status_code=200, response={"id": str(account_id), "owner": OWNER, "note": f"for {OWNER}"},
    )  # fmt: skip
    services.account_open(owner=OTHER, currency="EUR")
    assert OWNER in database_text()  # the read model and the stored response hold it now
    return account_id


def test_forgetting_erases_the_owner_from_every_table_and_keeps_the_history(account):
    said = forget(account)
    assert f"forgot the subject {account}" in said
    assert "data key" in said
    assert "destroyed" in said

    assert OWNER not in database_text()
    assert OTHER in database_text()  # nobody else is touched
    loaded = get_repository(BankAccount).load(account)
    assert loaded.owner == ERASED
    assert loaded.balance == pytest.approx(19.75)
    assert get_repository(BankAccount).load(account, version=1).owner == ERASED  # time travel
    assert AccountBalance.objects.get(account_id=account).owner == ERASED
    assert not Snapshot.objects.filter(aggregate_id=account).exists()
    assert "owner" not in IdempotencyKey.objects.get(key="open-zebedee").response
    quoted = IdempotencyKey.objects.get(key="quoting").response
    assert quoted == {"id": str(account), "owner": ERASED, "note": f"for {ERASED}"}

    key = PersonalDataKey.objects.get(subject=str(account))
    assert key.wrapped_key is None
    assert key.forgotten_at is not None
    assert key.reason == "GDPR art. 17 request #4711"
    record = Event.objects.filter(aggregate_id=account).latest("version")
    assert record.event_type == SUBJECT_FORGOTTEN
    assert record.version == 5
    assert record.metadata["reason"] == "GDPR art. 17 request #4711"
    assert record.event_data["subject"] == str(account)


def test_the_chains_and_a_digest_taken_before_still_verify(account, tmp_path):
    digest = tmp_path / "digest.json"
    call_command("ledger_digest", "--no-progress", "--out", str(digest), stdout=StringIO())
    forget(account)
    out = StringIO()
    call_command("verify_events", "--no-progress", stdout=out)
    assert "first broken" not in out.getvalue()
    call_command("verify_events", "--no-progress", "--digest", str(digest), stdout=out)
    assert "first broken" not in out.getvalue()


def test_commands_on_the_account_still_work_after(account):
    forget(account)
    services.account_deposit(account_id=account, amount="1.00")
    services.account_withdraw(account_id=account, amount="0.75")
    assert get_repository(BankAccount).load(account).owner == ERASED


def test_a_second_erasure_says_so_and_changes_nothing(account):
    forget(account)
    events = Event.objects.count()
    again = forget(account, "again")
    assert "was forgotten on" in again
    assert "GDPR art. 17 request #4711" in again
    assert Event.objects.count() == events


def test_an_unknown_subject_exits_2_and_a_missing_reason_is_refused(account):
    with pytest.raises(CommandError, match="no personal data of the subject") as caught:
        forget(uuid.uuid4())
    assert caught.value.returncode == 2
    with pytest.raises(CommandError, match="reason"):
        forget(account, "   ")
    with pytest.raises(CommandError):
        call_command("forget_subject", str(account), stdout=StringIO())
    assert PersonalDataKey.objects.get(subject=str(account)).wrapped_key is not None


def test_a_checkpoint_error_that_quotes_the_owner_is_scrubbed(account):
    ProjectionCheckpoint.objects.update_or_create(
        name="test.quoting", defaults={"last_error": f"handler failed on owner={OWNER!r}"}
    )
    forget(account)
    assert ProjectionCheckpoint.objects.get(name="test.quoting").last_error == (
        f"handler failed on owner='{ERASED}'"
    )


def test_plaintext_recorded_before_sealing_is_refused_with_a_count(account):
    plain_store = EventStore(get_recorder())  # no cipher: as a store before this release did
    legacy = uuid.uuid4()
    plain_store.append(legacy, [NewEvent("bank.AccountOpened", {"owner": "Old Plain",
                                                               "currency": "EUR",
                                                               "overdraft_limit": "0"})],
                       expected_version=NO_STREAM, aggregate_type="bank.Account")  # fmt: skip
    with pytest.raises(CommandError, match=r"1 event of the subject .* in plaintext") as caught:
        forget(legacy)
    assert "docs/privacy.md" in str(caught.value)
    assert caught.value.returncode == 1


def test_a_forgotten_account_cannot_be_found_by_its_old_owner(account):
    forget(account)
    assert not AccountBalance.objects.filter(owner=OWNER).exists()
    with pytest.raises(AggregateNotFound):
        get_repository(BankAccount).load(uuid.uuid4())
    assert json.dumps(list(Event.objects.values_list("event_data", flat=True))).count(OWNER) == 0


def test_a_customer_takes_over_an_account_s_key_without_touching_its_events(account):
    """Events name the key, not the subject: re-pointing the key moves the data to a new
    subject, and forgetting that subject erases it."""
    before = list(Event.objects.order_by("pk").values_list("hash", flat=True))
    PersonalDataKey.objects.filter(subject=str(account)).update(subject="customer:42")
    assert get_repository(BankAccount).load(account).owner == OWNER
    with pytest.raises(CommandError, match="no personal data") as caught:
        forget(account)
    assert caught.value.returncode == 2
    said = forget("customer:42")
    assert "1 event(s) now read their personal fields as erased" in said
    assert get_repository(BankAccount).load(account).owner == ERASED
    assert OWNER not in database_text()
    assert list(Event.objects.order_by("pk").values_list("hash", flat=True))[: len(before)] == (
        before
    )
