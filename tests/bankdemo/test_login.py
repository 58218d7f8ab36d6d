"""The admin's login page tells a teller why they are refused, and nobody else more than
Django does: wrong credentials get the usual message, and django-axes still locks out."""

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

pytestmark = pytest.mark.django_db
NO_ACCESS = "has no admin access"
WRONG = "Please enter the correct username and password for a staff account"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def teller() -> User:
    user = User.objects.create_user("teller", password="teller-password")
    user.groups.add(Group.objects.get_or_create(name="tellers")[0])
    return user


def log_in(client: Client, username: str, password: str):
    return client.post("/admin/login/", {"username": username, "password": password})


def test_a_teller_with_the_right_password_is_told_the_account_has_no_admin_access(teller):
    client = Client()
    page = log_in(client, "teller", "teller-password")
    assert page.status_code == 200
    text = page.content.decode()
    assert "The account “teller” has no admin access" in text
    assert WRONG not in text
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(("username", "password"),
                         [("teller", "wrong"), ("nobody", "teller-password")])  # fmt: skip
def test_wrong_credentials_keep_the_usual_message(teller, username, password):
    page = log_in(Client(), username, password)
    assert page.status_code == 200
    text = page.content.decode()
    assert WRONG in text
    assert NO_ACCESS not in text


def test_an_auditor_logs_in(settings):
    User.objects.create_user("auditor", password="auditor-password", is_staff=True)
    client = Client()
    assert log_in(client, "auditor", "auditor-password").status_code == 302
    assert client.session["_auth_user_id"]


def test_a_locked_out_teller_learns_nothing_about_the_password(settings, teller):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    for attempt in range(3):
        log_in(client, "teller", f"guess{attempt}")
    locked = log_in(client, "teller", "teller-password")
    assert locked.status_code == 429
    assert NO_ACCESS not in locked.content.decode()
