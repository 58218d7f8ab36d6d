"""Each projection's position, the log head and the lag between them."""

import pytest

from eventsourcing_app.core.records import START
from eventsourcing_app.projections import registry
from eventsourcing_app.projections.status import projection_status, projection_statuses
from eventsourcing_app.projections.worker import ProjectionWorker
from eventsourcing_app.wiring import get_event_store
from tests.projectionapp import projections
from tests.projections.helpers import open_account


@pytest.fixture(autouse=True)
def fragile_is_broken(log_db, monkeypatch):
    monkeypatch.setattr(projections, "fragile_fixed", False)


def statuses() -> dict:
    return {status.name: status for status in projection_statuses(get_event_store())}


def test_lag_position_and_failures_are_reported():
    store = get_event_store()
    before = statuses()
    assert before["sample.movements"].status == "not started"
    assert before["sample.movements"].position == START
    open_account("Ada", "1.00", "13.13", "2.00")
    head = store.head()
    lagging = statuses()
    assert (lagging["sample.movements"].events_behind, lagging["sample.movements"].head) == (
        4,
        head,
    )
    assert not lagging["sample.movements"].up_to_date
    inline = lagging["sample.balances"]
    assert (inline.status, inline.position, inline.events_behind) == ("inline", head, 0)
    ProjectionWorker(
        registry.select(["sample.movements", "sample.fragile"]), store, owner="w"
    ).run_once()
    after = statuses()
    assert after["sample.movements"].up_to_date
    assert after["sample.movements"].owner == "w"
    assert projection_status("sample.movements", store).position == head
    fragile = after["sample.fragile"]
    assert fragile.status == "failed"
    assert fragile.events_behind == 4  # the failed batch rolled back: the checkpoint stayed
    assert "cannot digest 13.13" in fragile.last_error
    assert fragile.failed_event_id is not None
    assert after["sample.daily"].events_behind == 4


def test_a_step_taken_while_the_status_is_read_is_not_shown_as_up_to_date(monkeypatch):
    """A worker that handles the last event and appends (as the transfer saga does) right after
    the head is read must not be reported at the head with its own new event unhandled."""
    store = get_event_store()
    open_account("Ada", "1.00")
    read_head = store.head
    stepped = []

    def head_then_a_step():
        head = read_head()
        if not stepped:
            stepped.append(head)
            ProjectionWorker(registry.select(["sample.movements"]), store, owner="w").run_once()
            open_account("Grace", "2.00")  # the step's own events, after the checkpoint
        return head

    monkeypatch.setattr(store, "head", head_then_a_step)
    movements = {s.name: s for s in projection_statuses(store)}["sample.movements"]
    assert stepped, "the status never read the head"
    unhandled = store.count_between(
        projection_status("sample.movements", store).position, read_head(), 100
    )
    assert unhandled == 2
    assert not movements.up_to_date, f"shown up to date with {unhandled} events unhandled"
