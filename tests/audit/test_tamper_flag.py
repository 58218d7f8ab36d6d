"""A row altered behind the append-only triggers is flagged on its timeline.

Not a committing test: the trigger is switched off inside the test's transaction, which rolls
back with everything else.
"""

import pytest

from bankdemo import seeding
from eventsourcing_app.models import Event
from tests.audit.test_admin import EVENTS, login
from tests.store.test_tamper import tamper


@pytest.mark.django_db
def test_a_row_altered_behind_the_triggers_is_flagged_on_its_timeline(client):
    seeding.seed_history(accounts=2, events=10, progress=lambda n: None)
    login(client, "auditor", "auditors")
    victim = Event.objects.filter(event_type="bank.AccountOpened").first()
    page = client.get(f"{EVENTS}timeline/{victim.aggregate_id}/").content.decode()
    assert "hash chain verified" in page
    tamper("UPDATE events SET event_data = %s WHERE id = %s", ['{"owner": "Mallory"}', victim.pk])
    page = client.get(f"{EVENTS}timeline/{victim.aggregate_id}/").content.decode()
    assert "integrity broken" in page
    assert f"event {victim.pk} " in page
