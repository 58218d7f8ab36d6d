"""Token authentication reads the token, its user and the user's staff groups in one
statement; what it answers is what DRF's token authentication and the group query answered."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import exceptions
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from bankdemo.api.authentication import TokenAuthentication
from bankdemo.api.permissions import AUDITORS, TELLERS, in_group
from tests.api.conftest import staff

pytestmark = pytest.mark.django_db


def token_of(user: User) -> str:
    return Token.objects.create(user=user).key


def test_the_user_read_with_the_token_is_the_user_the_orm_reads():
    user = staff("auth-teller", TELLERS)
    user.last_login = user.date_joined
    user.first_name, user.email = "Grace", "grace@example.com"
    user.save()
    key = token_of(user)
    found, token = TokenAuthentication().authenticate_credentials(key)
    expected = User.objects.get(pk=user.pk)
    for field in User._meta.concrete_fields:
        value, wanted = getattr(found, field.attname), getattr(expected, field.attname)
        assert value == wanted, field.name
        assert type(value) is type(wanted), field.name  # SQLite's text dates converted too
    assert (token.key, token.user_id, token.created) == (key, user.pk, Token.objects.get().created)
    assert token.user is found


def test_one_statement_answers_the_token_and_the_permission_check():
    key = token_of(staff("one-query-teller", TELLERS))
    with CaptureQueriesContext(connection) as queries:
        user, _ = TokenAuthentication().authenticate_credentials(key)
        assert in_group(user, TELLERS)
        assert in_group(user, TELLERS, AUDITORS)
        assert not in_group(user, AUDITORS)
    assert len(queries.captured_queries) == 1
    assert user.staff_groups == {TELLERS}


def test_an_unknown_token_and_an_inactive_user_are_refused_as_drf_refuses_them():
    with pytest.raises(exceptions.AuthenticationFailed, match="Invalid token"):
        TokenAuthentication().authenticate_credentials("no-such-token")
    user = staff("inactive-teller", TELLERS)
    key = token_of(user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    with pytest.raises(exceptions.AuthenticationFailed, match="inactive or deleted"):
        TokenAuthentication().authenticate_credentials(key)


def test_groups_are_read_again_on_every_request():
    user = staff("moved-teller", TELLERS)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_of(user)}")
    opened = client.post("/api/accounts/", {"owner": "Ada", "currency": "EUR"}, format="json")
    assert opened.status_code == 201
    user.groups.clear()
    user.groups.add(Group.objects.get_or_create(name=AUDITORS)[0])
    assert client.post("/api/accounts/", {"owner": "Ada", "currency": "EUR"},
                       format="json").status_code == 403  # fmt: skip
    assert client.get("/api/accounts/").status_code == 200  # an auditor reads
    user.groups.clear()
    assert client.get("/api/accounts/").status_code == 403
