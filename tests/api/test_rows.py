"""The idempotency record's statements built once store and read what the ORM would."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.response import Response

from bankdemo.api.idempotency import _remember, _stored
from bankdemo.models import IdempotencyKey
from tests.api.conftest import staff

pytestmark = pytest.mark.django_db

BODY = {"id": "6f9c1c1e-0000-4000-8000-000000000001", "version": 7, "balance": "12.30",
        "nested": {"list": [1, "two", None, True]}, "owner": "Zoë"}  # fmt: skip


def test_a_record_written_by_its_statement_reads_the_same_through_the_orm_and_back():
    user = staff("rows-teller", "tellers")
    response = Response(BODY, status=201, headers={"ETag": '"7"', "Location": "/api/x/"})
    _remember(user, "key-1", "f" * 64, response)
    orm = IdempotencyKey.objects.get(user=user, key="key-1")
    assert (orm.request_hash, orm.status_code, orm.response) == ("f" * 64, 201, BODY)
    assert orm.headers == {"ETag": '"7"', "Location": "/api/x/"}
    assert isinstance(orm.created_at, dt.datetime)
    assert orm.created_at.tzinfo is not None
    read = _stored(user, "key-1")
    for field in IdempotencyKey._meta.concrete_fields:
        value, wanted = getattr(read, field.attname), getattr(orm, field.attname)
        assert value == wanted, field.name
        assert type(value) is type(wanted), field.name
    assert _stored(user, "key-2") is None
    assert _stored(staff("rows-other", "tellers"), "key-1") is None  # keys are per user
