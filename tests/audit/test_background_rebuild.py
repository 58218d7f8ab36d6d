"""The admin's rebuild action: it returns at once and the rebuild runs in the background, its
progress on the projections page, who started it recorded, one at a time per projection, and
a failure shown with its error.

The background thread reads the log through a connection of its own, which sees committed data
only: on PostgreSQL these tests commit for real. SQLite's test database lives in one in-memory
connection whose test transaction is never committed (its append-only triggers refuse the
flush a committing test needs), so there the thread is handed that connection instead, and a
test of its own runs the real path, a thread with a connection of its own, on a SQLite file in
a process of its own.

The thread beats as it goes; a run whose process died stops beating, is shown abandoned once
silent past the stale limit, and is closed by the next rebuild of its projection.
"""

import datetime as dt
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connections
from django.db.backends.signals import connection_created
from django.utils import timezone

from bankdemo import seeding
from eventsourcing_app import models
from eventsourcing_app.audit.display import utc
from eventsourcing_app.models import CheckpointChange, ProjectionCheckpoint, RebuildRun
from eventsourcing_app.projections import background
from eventsourcing_app.projections import registry as projection_registry
from tests.helpers import on_postgresql


def events_of_daily_types() -> int:
    """What a rebuild of the daily totals reads: the events of the types it handles."""
    handled = projection_registry.get(DAILY).event_types
    total = models.Event.objects.filter(event_type__in=handled).count()
    assert 0 < total < models.Event.objects.count()  # deposits and withdrawals, not openings
    return total


pytestmark = pytest.mark.usefixtures("log_db")
CHECKPOINTS = "/admin/eventsourcing_app/projectioncheckpoint/"
DAILY = "bank.daily_totals"
TRANSFERS = "bank.transfers"
ROOT = Path(__file__).resolve().parents[2]


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
            for index, run_id in enumerate(run_ids):
                background._run(run_id, using, waiting=run_ids[index + 1 :])

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


def finished(timeout=30.0, **which) -> RebuildRun:
    """Wait for the one run (or the one run `which` selects) to finish; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = RebuildRun.objects.get(**which)
        if run.finished_at is not None:
            return run
        time.sleep(0.02)
    raise AssertionError(f"the rebuild did not finish in {timeout} s")


def as_seen(run: RebuildRun) -> RebuildRun:
    """The run as the projections page shows it: from the database on PostgreSQL (where the
    thread writes its count and heartbeat at once), brought up to date from this process's
    memory on SQLite (where the rebuild's write lock keeps them there)."""
    run = RebuildRun.objects.get(pk=run.pk)
    return run if on_postgresql() else background.brought_up_to_date(run)


def runs_table(client) -> str:
    page = client.get(CHECKPOINTS).content.decode()
    return page.split('id="rebuild-runs"')[1].split("</table>")[0]


class Gate:
    """Holds a rebuild after each batch of 10 until the test lets the next one through."""

    def __init__(self) -> None:
        self.batches, self.passes, self.opened = (
            threading.Semaphore(0), threading.Semaphore(0), threading.Event()
        )  # fmt: skip

    def around(self, rebuild):
        def gated(*args, progress, **kwargs):
            def step(events):
                progress(events)
                self.batches.release()
                if not self.opened.is_set():
                    assert self.passes.acquire(timeout=30)

            return rebuild(*args, progress=step, batch_size=10, **kwargs)

        return gated

    def wait_for_batch(self) -> None:
        assert self.batches.acquire(timeout=30), "no batch was read"

    def next_batch(self) -> None:
        self.passes.release()

    def open(self) -> None:
        self.opened.set()
        self.passes.release()


@pytest.fixture
def gate(monkeypatch):
    gate = Gate()
    monkeypatch.setattr(background, "rebuild", gate.around(background.rebuild))
    yield gate
    gate.open()


def test_the_action_returns_at_once_and_the_rebuild_finishes_in_the_background(root, history):
    before = ProjectionCheckpoint.objects.get(name=DAILY).position
    response = start_rebuild(root)
    assert response.status_code == 302
    run = finished()
    total = events_of_daily_types()
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


def test_progress_shows_while_it_runs_and_a_second_start_is_refused(root, history, gate):
    assert start_rebuild(root).status_code == 302
    gate.wait_for_batch()
    run = RebuildRun.objects.get()
    assert run.finished_at is None
    if on_postgresql():  # written through a connection of its own, outside the rebuild's
        assert run.events_read == 10
    assert f"running: 10 of {run.events_total} events read" in runs_table(root)
    refused = start_rebuild(root, reason="again")
    assert refused.status_code == 302
    assert "a rebuild is running already" in root.get(refused.url).content.decode()
    assert RebuildRun.objects.count() == 1
    gate.open()
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


def a_run(*, started: float, beat: float | None, **fields) -> RebuildRun:
    """A run as a thread would have left it, started and last beating so many seconds ago."""
    now = timezone.now()
    fields = {"projection": DAILY, "started_by": "ada", "reason": "before the restart",
              "events_total": 500, "events_read": 120, **fields}  # fmt: skip
    return RebuildRun(
        started_at=now - dt.timedelta(seconds=started),
        heartbeat_at=None if beat is None else now - dt.timedelta(seconds=beat),
        **fields,
    )


def test_a_run_is_abandoned_once_silent_past_the_stale_limit(monkeypatch):
    assert a_run(started=600, beat=5).state == "running"
    assert a_run(started=600, beat=600).state == "abandoned"
    assert a_run(started=5, beat=None, events_total=None).state == "waiting"
    assert a_run(started=600, beat=None, events_total=None).state == "abandoned"  # never beat
    monkeypatch.setattr(models, "REBUILD_STALE_AFTER", dt.timedelta(seconds=1))
    assert a_run(started=600, beat=5).state == "abandoned"
    done = a_run(started=600, beat=5, finished_at=timezone.now())
    assert done.state == "finished"


def test_an_abandoned_run_is_shown_so_and_closed_by_the_next_rebuild(root, history):
    dead = a_run(started=600, beat=300)
    dead.save()
    assert dead.state == "abandoned"
    table = runs_table(root)
    assert f"abandoned</strong>: no heartbeat since {utc(dead.heartbeat_at)}" in table
    assert "after 120 of 500 events" in table
    statuses = root.get(CHECKPOINTS).content.decode().split('id="rebuild-runs"')[0]
    assert "rebuilding" not in statuses

    response = start_rebuild(root)
    assert "Rebuild started in the background" in root.get(response.url).content.decode()
    run = finished(projection=DAILY, started_by="root")
    assert run.error == ""
    assert run.events_read == run.events_total
    dead.refresh_from_db()
    assert dead.finished_at is not None
    since = dead.heartbeat_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert dead.error == f"abandoned: no heartbeat since {since}; the process running it stopped"
    assert dead.state == "abandoned"
    assert CheckpointChange.objects.get().changed_by == "root"
    table = runs_table(root)
    assert f"no heartbeat since {utc(dead.heartbeat_at)}" in table
    assert f"finished: {run.events_read} events replayed" in table


def test_a_run_with_a_fresh_heartbeat_still_blocks_a_second_start(root, history):
    alive = a_run(started=600, beat=30)
    alive.save()
    refused = start_rebuild(root, reason="again")
    assert "a rebuild is running already" in root.get(refused.url).content.decode()
    assert RebuildRun.objects.get() == alive
    alive.refresh_from_db()
    assert (alive.finished_at, alive.error, alive.state) == (None, "", "running")
    assert "running: 120 of 500 events read" in runs_table(root)


def test_the_heartbeat_moves_as_the_rebuild_reads(root, history, gate):
    first, waiting = background.start([DAILY, TRANSFERS], by="root")[0]
    gate.wait_for_batch()
    beats = [(as_seen(first).heartbeat_at, as_seen(waiting).heartbeat_at)]
    assert as_seen(first).events_read == 10
    for read in (20, 30):
        time.sleep(0.01)  # the clock moves on between two beats
        gate.next_batch()
        gate.wait_for_batch()
        beats.append((as_seen(first).heartbeat_at, as_seen(waiting).heartbeat_at))
        assert as_seen(first).events_read == read
    assert first.started_at < beats[0][0] < beats[1][0] < beats[2][0]
    # The run waiting behind it in the thread beats with it, so it never looks abandoned.
    assert beats[0][1] < beats[1][1] < beats[2][1]
    assert as_seen(waiting).state == "waiting"
    gate.open()
    assert finished(pk=first.pk).heartbeat_at >= beats[2][0]
    assert finished(pk=waiting.pk).error == ""


def rebuild_on_a_sqlite_file() -> None:
    """Run the background path as a server on a SQLite file does (the test below runs this in
    a process of its own): the thread's own connection rebuilds while this one reads progress."""
    call_command("migrate", verbosity=0)
    assert connections["default"].vendor == "sqlite"
    seeding.seed_history(accounts=3, events=40, progress=lambda n: None)
    seeding.catch_up_projections()
    opened = []
    connection_created.connect(
        lambda sender, **kwargs: opened.append(threading.current_thread().name), weak=False
    )
    gate = Gate()
    background.rebuild = gate.around(background.rebuild)
    (run,), refused = background.start([DAILY], by="root", reason="on a file")
    assert refused == []
    gate.wait_for_batch()
    # The rebuild holds the write lock: this connection still reads, and a second start is
    # refused on that read, without waiting for the lock.
    shown = next(r for r in background.latest_runs() if r.pk == run.pk)
    assert (shown.state, shown.events_read) == ("running", 10)
    assert background.start([DAILY], by="root") == ([], [DAILY])
    # Seen from another process, the run has beaten at its start only: past the stale limit it
    # looks abandoned there, and closing it waits for the write lock and gives up.
    with background._progress_lock:
        del background._beats[run.pk]
    stale_after, models.REBUILD_STALE_AFTER = models.REBUILD_STALE_AFTER, dt.timedelta(0)
    with connections["default"].cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout = 200")  # milliseconds, for the 20 s of settings
    assert background.start([DAILY], by="root") == ([], [DAILY])
    models.REBUILD_STALE_AFTER = stale_after
    gate.open()
    for thread in background.threads:
        thread.join(60)
    run.refresh_from_db()
    total = events_of_daily_types()
    assert (run.error, run.events_read, run.events_total) == ("", total, total)
    assert run.heartbeat_at >= run.started_at
    assert CheckpointChange.objects.get().reason == "on a file"
    assert f"rebuild {DAILY}" in opened, opened
    print(f"rebuilt {DAILY} on a file: {total} events")


def test_on_a_sqlite_file_the_thread_rebuilds_through_a_connection_of_its_own(tmp_path):
    code = ("import django; django.setup(); "
            "from tests.audit.test_background_rebuild import rebuild_on_a_sqlite_file; "
            "rebuild_on_a_sqlite_file()")  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "tests.settings",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}"}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"rebuilt {DAILY} on a file" in done.stdout
