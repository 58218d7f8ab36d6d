"""Users and API clients for the bank API tests."""

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient


def staff(username: str, group: str | None) -> User:
    user = User.objects.create_user(username, password=f"{username}-password")
    if group:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


@pytest.fixture
def teller(db):
    client = APIClient()
    client.force_authenticate(staff("teller", "tellers"))
    return client


@pytest.fixture
def auditor(db):
    client = APIClient()
    client.force_authenticate(staff("auditor", "auditors"))
    return client


@pytest.fixture
def anonymous():
    return APIClient()
