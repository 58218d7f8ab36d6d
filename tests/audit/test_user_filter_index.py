"""The event list's user filter reads the username index, on PostgreSQL and on SQLite, and still
finds the older events that carry only the user's id."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import connection
from django.test import RequestFactory

from bankdemo import services
from eventsourcing_app.core.context import metadata_context
from eventsourcing_app.models import Event
from tests.helpers import on_postgresql

pytestmark = pytest.mark.django_db
EVENTS = "/admin/eventsourcing_app/event/"


@pytest.fixture
def ada_and_bob():
    """Events of ada (one with her username, one from before usernames were recorded) and bob."""
    ada = User.objects.create_user("ada")
    with metadata_context(user_id=str(ada.pk), username="ada"):
        named, _ = services.account_open(owner="Named", currency="EUR")
    with metadata_context(user_id=str(ada.pk)):
        older, _ = services.account_open(owner="Older", currency="EUR")
    with metadata_context(user_id="999999", username="bob"):
        bobs, _ = services.account_open(owner="Bob's", currency="EUR")
    return {"ada": {named.id, older.id}, "bob": {bobs.id}}


def filtered(username: str):
    """The queryset the event list runs for `?user=username`, filters and ordering applied."""
    request = RequestFactory().get(EVENTS, {"user": username})
    request.user = User.objects.create_superuser(f"auditor-of-{username}")
    return admin.site.get_model_admin(Event).get_changelist_instance(request).queryset


def plan(queryset) -> str:
    if on_postgresql():
        with connection.cursor() as cursor:
            # Tiny test tables make a scan look cheapest; ask whether the index can serve.
            cursor.execute("SET LOCAL enable_seqscan = off")
    return queryset.explain()


@pytest.mark.parametrize("username", ["ada", "bob"])
def test_the_user_filter_reads_the_username_index(ada_and_bob, username):
    queryset = filtered(username)
    assert {e.aggregate_id for e in queryset} == ada_and_bob[username]
    found = plan(queryset)
    assert "events_username_idx" in found, found
    # No pass over the whole log: neither a sequential scan nor a full scan of any index.
    assert "Seq Scan" not in found, found
    assert "SCAN events" not in found, found


def test_the_older_events_of_a_user_are_found_through_the_index_too(ada_and_bob):
    found = plan(filtered("ada"))
    if on_postgresql():  # one index scan for the username, one for the events without any
        assert found.count("Bitmap Index Scan on events_username_idx") == 2, found
    else:
        assert "MULTI-INDEX OR" in found, found
        assert found.count("USING INDEX events_username_idx") == 2, found
