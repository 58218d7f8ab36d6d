"""The admin's rebuild action: it returns at once and the rebuild runs in the background, its
progress on the projections page, who started it recorded, one at a time per projection, and
a failure shown with its error.

The background thread reads the log through a connection of its own, which sees committed data
only: on PostgreSQL these tests commit for real. SQLite's test database lives in one in-memory
connection whose test transaction is never committed (its append-only triggers refuse the
flush a committing test needs), so there the thread is handed that connection instead.
"""

import threading
import time

import pytest
from django.contrib.auth.models import User
from django.db import connections

from bankdemo import seeding
from eventsourcing_app.core.records import START
from eventsourcing_app.models import CheckpointChange, ProjectionCheckpoint, RebuildRun
from eventsourcing_app.projections import background
from eventsourcing_app.projections import registry as projection_registry
from eventsourcing_app.wiring import get_event_store
from tests.helpers import on_postgresql

pytestmark = pytest.mark.usefixtures("log_db")
CHECKPOINTS = "/admin/eventsourcing_app/projectioncheckpoint/"
DAILY = "bank.daily_totals"


@pytest.fixture
def history():
    seeding.seed_history(accounts=3, events=40, progress=lambda n: None)
    seeding.catch_up_projections()


@pytest.fixture(autouse=True)
def threads_end(monkeypatch):
    if not on_postgresql():
        shared = connections["default"]
        shared.inc_thread_sharing()

        def run_all(run_ids, using):  # on the test's connection, which must stay open
            connections[using] = shared
            for run_id in run_ids:
                background._run(run_id, using)

        monkeypatch.setattr(background, "_run_all", run_all)
    yield
    for thread in background.threads:
        thread.join(30)
    background.threads.clear()
    if not on_postgresql():
        shared.dec_thread_sharing()


@pytest.fixture
def root(client):
    client.force_login(User.objects.create_user("root", is_staff=True, is_superuser=True))
    return client


def start_rebuild(client, reason="totals doubled on the 3rd"):
    form = {"action": "rebuild_projection", "_selected_action": [DAILY], "confirmed": "yes",
            "reason": reason}  # fmt: skip
    return client.post(CHECKPOINTS, form)


def finished(timeout=30.0) -> RebuildRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = RebuildRun.objects.get()
        if run.finished_at is not None:
            return run
        time.sleep(0.02)
    raise AssertionError(f"the rebuild did not finish in {timeout} s")


def runs_table(client) -> str:
    page = client.get(CHECKPOINTS).content.decode()
    return page.split('id="rebuild-runs"')[1].split("</table>")[0]


@pytest.fixture
def paused(monkeypatch):
    """Rebuild in batches of 10 and stop after the first one until `release` is set."""
    reached, release = threading.Event(), threading.Event()
    original = background.rebuild

    def gated(*args, progress, **kwargs):
        def step(events):
            progress(events)
            reached.set()
            assert release.wait(30)

        return original(*args, progress=step, batch_size=10, **kwargs)

    monkeypatch.setattr(background, "rebuild", gated)
    yield reached, release
    release.set()


def test_the_action_returns_at_once_and_the_rebuild_finishes_in_the_background(root, history):
    before = ProjectionCheckpoint.objects.get(name=DAILY).position
    response = start_rebuild(root)
    assert response.status_code == 302
    run = finished()
    total = get_event_store().count_between(START, get_event_store().head(), 10**9)
    assert (run.projection, run.started_by, run.reason, run.error) == (
        DAILY,
        "root",
        "totals doubled on the 3rd",
        "",
    )
    assert run.events_read == run.events_total == total
    change = CheckpointChange.objects.get()
    assert (change.checkpoint, change.kind, change.changed_by, change.reason) == (
        DAILY,
        "rebuild",
        "root",
        "totals doubled on the 3rd",
    )
    assert change.from_position == before
    assert change.to_position == ProjectionCheckpoint.objects.get(name=DAILY).position
    page = root.get(response.url).content.decode()
    assert "Rebuild started in the background: bank.daily_totals" in page
    assert f"finished: {total} events replayed" in runs_table(root)


def test_progress_shows_while_it_runs_and_a_second_start_is_refused(root, history, paused):
    reached, release = paused
    assert start_rebuild(root).status_code == 302
    assert reached.wait(30)
    run = RebuildRun.objects.get()
    assert run.finished_at is None
    if on_postgresql():  # written through a connection of its own, outside the rebuild's
        assert run.events_read == 10
    assert f"running: 10 of {run.events_total} events read" in runs_table(root)
    refused = start_rebuild(root, reason="again")
    assert refused.status_code == 302
    assert "a rebuild is running already" in root.get(refused.url).content.decode()
    assert RebuildRun.objects.count() == 1
    release.set()
    run = finished()
    assert run.error == ""
    assert run.events_read == run.events_total
    assert CheckpointChange.objects.get().changed_by == "root"


def test_a_failed_rebuild_shows_its_error_and_leaves_the_checkpoint(root, history, monkeypatch):
    projection = projection_registry.get(DAILY)

    fixed, apply = threading.Event(), projection.apply

    def broken(stored_events, batch):
        if not fixed.is_set():
            raise RuntimeError("the handler broke on purpose")
        apply(stored_events, batch)

    monkeypatch.setattr(projection, "apply", broken)
    before = ProjectionCheckpoint.objects.get(name=DAILY).position
    assert start_rebuild(root).status_code == 302
    run = finished()
    assert "the handler broke on purpose" in run.error
    assert run.state == "failed"
    assert not CheckpointChange.objects.exists()
    assert ProjectionCheckpoint.objects.get(name=DAILY).position == before
    table = runs_table(root)
    assert "failed" in table
    assert "the handler broke on purpose" in table
    # A failed run is over: the next one may start.
    fixed.set()
    start_rebuild(root)
    for thread in background.threads:
        thread.join(30)
    assert RebuildRun.objects.filter(error="").get().finished_at is not None
