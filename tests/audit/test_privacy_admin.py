"""The data subjects in the admin: a read-only list that auditors and privacy officers read,
which never shows a key, and the action that forgets the subjects selected, for privacy
officers only, after a page that asks why."""

import base64

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from bankdemo import services
from bankdemo.domain import BankAccount
from eventsourcing_app.core.personal import ERASED
from eventsourcing_app.models import PersonalDataKey
from eventsourcing_app.privacy.erasure import MAX_REASON
from eventsourcing_app.wiring import get_repository
from tests.audit.test_admin import login

pytestmark = pytest.mark.usefixtures("log_db")

SUBJECTS = "/admin/eventsourcing_app/personaldatakey/"
REASON = "Request 93 of the data subject, art. 17"


@pytest.fixture
def accounts():
    """Two accounts, so two data subjects."""
    first, _ = services.account_open(owner="Florentyna Brackenbury", currency="EUR")
    second, _ = services.account_open(owner="Casimir Oldenshaw", currency="EUR")
    return first.id, second.id


@pytest.fixture
def officer(client):
    login(client, "privacy", "privacy officers")
    return client


def key_of(account) -> PersonalDataKey:
    return PersonalDataKey.objects.get(subject=str(account))


def forget(client, *accounts, reason=REASON, follow=True):
    """Send the action as its confirmation page does."""
    selected = [str(key_of(account).pk) for account in accounts]
    return client.post(SUBJECTS, {"action": "forget_subjects", "_selected_action": selected,
                                  "confirmed": "yes", "reason": reason}, follow=follow)  # fmt: skip


def said(response) -> list[tuple[str, str]]:
    return [(message.level_tag, message.message) for message in get_messages(response.wsgi_request)]


@pytest.mark.parametrize("who", ["auditor", "officer"])
def test_auditors_and_privacy_officers_read_the_list_and_never_a_key(request, who, accounts):
    client = request.getfixturevalue(who)
    response = client.get(SUBJECTS)
    assert response.status_code == 200
    page = response.content.decode()
    timeline = reverse("admin:eventsourcing_timeline", args=[accounts[0]])
    assert f'<a href="{timeline}"' in page  # the subject is the account: its timeline
    for column in ("created at (UTC)", "forgotten at (UTC)", "Forgotten by", "Reason"):
        assert column.lower() in page.lower()
    key = key_of(accounts[0])
    detail = client.get(f"{SUBJECTS}{key.pk}/change/")
    assert detail.status_code == 200
    wrapped = bytes(PersonalDataKey.objects.values_list("wrapped_key", flat=True).get(pk=key.pk))
    for html in (page, detail.content.decode()):
        assert "wrapped" not in html.lower()
        assert base64.b64encode(wrapped).decode() not in html
        assert wrapped.hex() not in html
    assert str(accounts[0]) in detail.content.decode()
    assert client.post(f"{SUBJECTS}{key.pk}/delete/").status_code == 403


def test_the_list_finds_a_subject_exactly_or_by_its_start(auditor, accounts):
    first, second = (str(account) for account in accounts)
    by_start = auditor.get(SUBJECTS, {"q": first[:8]}).content.decode()
    assert first in by_start
    assert second not in by_start
    exactly = auditor.get(SUBJECTS, {"q": f" {second} "}).content.decode()
    assert second in exactly
    assert first not in exactly


def test_auditors_get_no_action_and_cannot_forget_anyone(auditor, accounts):
    assert 'value="forget_subjects"' not in auditor.get(SUBJECTS).content.decode()
    response = forget(auditor, accounts[0], follow=False)
    assert response.status_code == 200  # the list again: no action of theirs has that name
    assert "Forget 1 data subject?" not in response.content.decode()
    assert not key_of(accounts[0]).forgotten


def test_a_privacy_officer_forgets_the_subjects_after_giving_the_reason(officer, accounts):
    assert 'value="forget_subjects"' in officer.get(SUBJECTS).content.decode()
    selected = [str(key_of(account).pk) for account in accounts]
    ask = officer.post(SUBJECTS, {"action": "forget_subjects", "_selected_action": selected})
    assert ask.status_code == 200
    page = ask.content.decode()
    assert "Forget 2 data subjects?" in page
    assert all(str(account) in page for account in accounts)
    assert f'maxlength="{MAX_REASON}"' in page
    assert not key_of(accounts[0]).forgotten  # asking changes nothing

    done = forget(officer, *accounts)
    assert done.status_code == 200
    messages = said(done)
    assert [level for level, _ in messages] == ["success", "success"]
    assert any(f"Forgot the subject {accounts[0]}:" in text for _, text in messages)
    for account in accounts:
        key = key_of(account)
        assert key.forgotten
        assert key.wrapped_key is None
        assert (key.forgotten_by, key.reason) == ("privacy", REASON)
    assert get_repository(BankAccount).load(accounts[0]).owner == ERASED


@pytest.mark.parametrize("reason", ["", "   ", "x" * (MAX_REASON + 1)])
def test_without_a_reason_or_with_too_long_a_one_nothing_is_erased(officer, accounts, reason):
    response = forget(officer, accounts[0], reason=reason)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Forget 1 data subject?" in page  # the confirmation again, with the error
    assert ("error", "Give the reason for the erasure: nothing was erased.") in said(response)
    assert 'class="errorlist' in page
    assert not key_of(accounts[0]).forgotten


def test_a_subject_forgotten_already_is_reported_and_the_others_are_forgotten(officer, accounts):
    forget(officer, accounts[0])
    first = key_of(accounts[0])
    selected = [str(key_of(account).pk) for account in accounts]
    ask = officer.post(SUBJECTS, {"action": "forget_subjects", "_selected_action": selected})
    assert ask.content.decode().count("forgotten already on") == 1
    response = forget(officer, accounts[0], accounts[1], reason="a second request")
    assert response.status_code == 200
    messages = said(response)
    errors = [text for level, text in messages if level == "error"]
    assert len(errors) == 1
    assert f"the subject {accounts[0]} was forgotten on" in errors[0]
    assert REASON in errors[0]
    assert [level for level, _ in messages].count("success") == 1
    assert key_of(accounts[0]).reason == REASON  # the first erasure's record stands
    assert key_of(accounts[0]).forgotten_at == first.forgotten_at
    assert key_of(accounts[1]).reason == "a second request"
