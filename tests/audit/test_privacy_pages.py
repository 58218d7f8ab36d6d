"""Personal data on the audit pages: the timeline and the event page show a personal field
opened beside the envelope as stored, and, once its subject is forgotten, who erased it, when
and why, with the value gone from the page; a page looks its keys up once, however many
personal events it shows, and a key it cannot open is a message, never a 500."""

import base64
import os
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bankdemo import services
from bankdemo.domain import BankAccount
from eventsourcing_app.audit import paging
from eventsourcing_app.audit.display import utc
from eventsourcing_app.core.personal import declarations, personal_data
from eventsourcing_app.core.records import NO_STREAM, NewEvent
from eventsourcing_app.models import Event, PersonalDataKey
from eventsourcing_app.privacy import keyring
from eventsourcing_app.privacy.erasure import forget_subject
from eventsourcing_app.wiring import get_event_store, get_repository
from tests.audit.test_admin import EVENTS
from tests.helpers import new_id

pytestmark = pytest.mark.usefixtures("log_db")

OWNER = "Ottoline Wrenfield-Abernathy"
REASON = "GDPR art. 17 request 4711"
OFFICER = "privacy-officer"
NOTED = "test.PersonNoted"  # a personal event type of these tests: one subject per event
OPENED = "Personal data (sealed in the event, shown opened):"


@pytest.fixture
def account():
    opened, _ = services.account_open(owner=OWNER, currency="EUR")
    services.account_deposit(account_id=opened.id, amount="12.00")
    return opened.id


@pytest.fixture
def noted(monkeypatch):
    """`NOTED` declared personal for the test only: a `name` whose subject is its `person`."""
    monkeypatch.setattr(declarations, "_by_type", dict(declarations._by_type))
    declarations.declare(NOTED, personal_data("name", subject="person"))


def notebook(tag: str, count: int):
    """A stream of `count` personal events, each of a subject of its own (`<tag>-<n>`)."""
    stream = new_id()
    notes = [NewEvent(NOTED, {"person": f"{tag}-{n}", "name": f"Name {tag} {n}"})
             for n in range(count)]  # fmt: skip
    get_event_store().append(stream, notes, expected_version=NO_STREAM,
                             aggregate_type="test.Notebook")  # fmt: skip
    return stream


def timeline(client, aggregate_id, query="") -> str:
    response = client.get(f"{EVENTS}timeline/{aggregate_id}/{query}")
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def event_page(client, aggregate_id, version=1) -> str:
    event = Event.objects.get(aggregate_id=aggregate_id, version=version)
    response = client.get(f"{EVENTS}{event.pk}/change/")
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def card(page: str, version: int) -> str:
    start = page.index(f'id="v{version}"')
    end = page.find('<div class="es-card', start + 1)
    return page[start : end if end != -1 else len(page)]


def stored_data(html: str) -> str:
    """The first "Data as stored" block of a page or card."""
    return re.search(r'<pre class="es-json">(.*?)</pre>', html[html.index("Data as stored") :],
                     re.S).group(1)  # fmt: skip


def erased_line(subject) -> str:
    key = PersonalDataKey.objects.get(subject=str(subject))
    return f"Personal data erased on {utc(key.forgotten_at)} by {OFFICER}: {REASON}"


def test_the_owner_shows_opened_beside_the_envelope_as_stored(auditor, account):
    opening = card(timeline(auditor, account), 1)
    assert f"{OPENED}</strong>" in opening
    assert f"owner: {OWNER}" in opening
    assert "$personal" in stored_data(opening)
    assert OWNER not in stored_data(opening)
    assert "Personal data erased" not in opening

    page = event_page(auditor, account)
    assert 'id="personal-data"' in page
    assert f"owner: {OWNER}" in page
    assert "$personal" in stored_data(page)
    assert OWNER not in stored_data(page)
    assert "Personal data erased" not in page


def test_after_the_erasure_the_pages_say_who_erased_it_when_and_why_and_show_no_name(
    auditor, account
):
    forget_subject(str(account), reason=REASON, by=OFFICER)
    line = erased_line(account)

    page = timeline(auditor, account)
    assert line in card(page, 1)
    header = re.search(r'<p[^>]*id="subject-forgotten">(.*?)</p>', page, re.S).group(1)
    assert f"personal data erased on {line.removeprefix('Personal data erased on ')}" in header
    assert OPENED not in page
    assert OWNER not in page
    assert "$personal" in stored_data(card(page, 1))  # the row is as it was: the hash covers it
    assert "Personal data erased" not in card(page, 2)  # a deposit holds no personal data

    page = event_page(auditor, account)
    assert line in page
    assert OWNER not in page
    assert "$personal" in stored_data(page)


def test_a_later_page_forgets_the_states_it_replayed_before_the_erasure(auditor, monkeypatch):
    monkeypatch.setattr(paging, "WHOLE_CHECK_UP_TO", 50)
    opened = BankAccount.open(owner=OWNER, currency="EUR")
    for number in range(1, paging.PAGE_SIZE + 5):
        opened.deposit(f"{number}.00")
    get_repository(BankAccount).save(opened)
    before = timeline(auditor, opened.id, "?page=2")
    assert OWNER in before  # the state after each card, replayed through version 100

    forget_subject(str(opened.id), reason=REASON, by=OFFICER)
    after = timeline(auditor, opened.id, "?page=2")
    assert OWNER not in after
    assert erased_line(opened.id).removeprefix("Personal data erased on ") in after
    assert "[erased]" in after  # the state shows the owner as erased


def test_a_timeline_looks_its_keys_up_once_however_many_personal_events_it_shows(auditor, noted):
    short, long = notebook("s", 2), notebook("l", 40)

    def queries(stream) -> int:
        with CaptureQueriesContext(connection) as captured:
            page = timeline(auditor, stream)
        assert page.count(OPENED) + page.count("Personal data erased on") == (
            2 if stream == short else 40
        )
        return len(captured)

    assert queries(short) == queries(long)
    assert "name: Name l 39" in timeline(auditor, long)
    for subject in ("s-0", "s-1", "l-0", "l-1"):
        forget_subject(subject, reason=REASON, by=OFFICER)
    assert queries(short) == queries(long)
    page = timeline(auditor, long)
    assert page.count(f"by {OFFICER}: {REASON}") == 2
    assert "Name l 0" not in page
    assert "name: Name l 2" in page


def test_a_key_that_cannot_be_opened_is_a_message_on_the_page(auditor, account, noted, monkeypatch):
    mixed = notebook("m", 3)
    forget_subject("m-1", reason=REASON, by=OFFICER)
    # Another master key than the one that wrapped the data keys, and none unwrapped yet.
    monkeypatch.setenv("PERSONAL_DATA_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setattr(keyring, "_unwrapped", None)

    failed = "Personal data cannot be opened: a data key is wrapped by the master key"
    page = timeline(auditor, account)
    assert failed in card(page, 1)
    assert OWNER not in page
    assert failed in event_page(auditor, account)
    # An erased key needs no master key: its card says who erased it, and nothing failed.
    page = timeline(auditor, mixed)
    assert (failed in card(page, 1), failed in card(page, 3)) == (True, True)
    assert f"by {OFFICER}: {REASON}" in card(page, 2)
    assert "cannot be opened" not in card(page, 2)
