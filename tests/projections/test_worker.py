"""The catch-up worker: checkpoints, crash safety, failures, ownership and waking up."""

import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
from django.db import connections, transaction

from eventsourcing_app.core.errors import OwnershipLost
from eventsourcing_app.core.records import START
from eventsourcing_app.following import checkpoints
from eventsourcing_app.models import ProjectionCheckpoint
from eventsourcing_app.projections import registry
from eventsourcing_app.projections.worker import ProjectionWorker
from eventsourcing_app.wiring import get_event_store
from tests.helpers import requires_postgresql
from tests.projectionapp import projections
from tests.projectionapp.models import Movement, Touch
from tests.projections.helpers import accounts_repository, generate_history, open_account

ASYNC = ["sample.movements", "sample.daily", "sample.fragile"]


@pytest.fixture(autouse=True)
def fragile_is_broken(log_db, monkeypatch):
    monkeypatch.setattr(projections, "fragile_fixed", False)


def worker(*names: str, batch_size: int = 50, **options) -> ProjectionWorker:
    return ProjectionWorker(
        registry.select(names or ASYNC), get_event_store(), batch_size=batch_size, **options
    )


def checkpoint(name: str) -> ProjectionCheckpoint:
    return ProjectionCheckpoint.objects.get(name=name)


def movement_count() -> int:
    return Movement.objects.count()


def test_the_worker_applies_every_event_once_and_moves_its_checkpoints():
    appended = generate_history(accounts=5, events=180)
    first = worker("sample.movements", "sample.daily")
    assert first.run_once() == 2 * appended
    assert movement_count() == appended - 5  # every movement, none of the openings
    head = get_event_store().head()
    assert checkpoint("sample.movements").position == head
    assert checkpoint("sample.daily").position == head
    assert first.run_once() == 0
    open_account("Ada", "1.00", "2.00")
    assert first.run_once() == 2 * 3
    assert movement_count() == appended - 5 + 2


def test_a_crash_before_the_checkpoint_moves_rolls_the_batch_back(monkeypatch):
    appended = generate_history(accounts=3, events=60)
    crashing = worker("sample.movements")
    checkpoints.ensure(["sample.movements"], "default")
    checkpoints.claim("sample.movements", crashing.owner, crashing.lease, "default")

    def crash(*args, **kwargs):
        raise SystemExit("killed between writing the read model and moving the checkpoint")

    monkeypatch.setattr(checkpoints, "advance", crash)
    with pytest.raises(SystemExit):
        crashing.deliver(crashing.sinks[0])
    assert movement_count() == 0
    assert checkpoint("sample.movements").position == START
    monkeypatch.undo()
    restarted = worker("sample.movements", lease=dt.timedelta(0))  # the dead worker's lease
    restarted.run_once()
    event_ids = list(Movement.objects.values_list("event_id", flat=True))
    assert len(event_ids) == len(set(event_ids)) == appended - 3


def test_a_failing_handler_stops_only_its_projection_until_fixed():
    open_account("Ada", "1.00", "2.00")
    poisoned = open_account("Bob", "13.13", "4.00")
    open_account("Cy", "5.00")
    runner = worker(batch_size=4)
    runner.run_once()
    failed = checkpoint("sample.fragile")
    assert failed.status == ProjectionCheckpoint.FAILED
    assert "ValueError: cannot digest 13.13" in failed.last_error
    poison_event = get_event_store().read_stream(poisoned.id, to_version=2)
    poison_id = list(poison_event)[-1].id
    assert failed.failed_event_id == poison_id
    assert all(
        event_id < poison_id for event_id in Touch.objects.values_list("event_id", flat=True)
    )
    head = get_event_store().head()
    assert checkpoint("sample.movements").position == head
    assert checkpoint("sample.daily").position == head
    assert checkpoint("sample.fragile").position < head
    assert runner.run_once() == 0  # not retried at once
    projections.fragile_fixed = True  # a fix is deployed: the old worker stops, a new one starts
    for name in runner.names:
        checkpoints.release(name, runner.owner, "default")
    worker().run_once()  # ...which retries and resumes at the failed event
    fixed = checkpoint("sample.fragile")
    assert (fixed.status, fixed.last_error, fixed.position) == ("ok", "", head)
    touched = sorted(Touch.objects.values_list("event_id", flat=True))
    assert len(touched) == 5
    assert poison_id in touched


def test_two_workers_never_run_one_projection_and_the_second_takes_over():
    appended = generate_history(accounts=2, events=40)
    first = worker("sample.movements", owner="first", lease=dt.timedelta(seconds=1))
    second = worker("sample.movements", owner="second", lease=dt.timedelta(seconds=1))
    assert first.run_once() == appended
    open_account("Ada", "1.00")
    assert second.run_once() == 0  # the first worker's lease is fresh
    assert checkpoint("sample.movements").owner == "first"
    time.sleep(1.2)  # the first worker dies without a word
    assert second.run_once() == 2
    assert checkpoint("sample.movements").owner == "second"
    open_account("Bob", "1.00")
    with pytest.raises(OwnershipLost):
        first.deliver(first.sinks[0])  # a worker that lost its lease cannot write
    assert movement_count() == appended - 2 + 1


@requires_postgresql
def test_a_worker_wakes_on_notify_and_stops_cleanly():
    stop = threading.Event()
    follower = worker("sample.movements", poll_interval=30)  # only NOTIFY can wake it in time

    def run():
        try:
            follower.run(stop)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    time.sleep(0.5)
    open_account("Ada", "1.00", "2.00")
    assert _eventually(lambda: movement_count() == 2, seconds=5)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert checkpoint("sample.movements").owner == ""


@requires_postgresql
def test_an_event_whose_transaction_commits_late_is_applied_exactly_once():
    store = get_event_store()
    follower = worker("sample.movements")
    early = open_account("Early")
    late = open_account("Late")
    follower.run_once()
    appended, release = threading.Event(), threading.Event()

    def slow_deposit():
        try:
            with transaction.atomic():
                account = accounts_repository().load(early.id)
                account.deposit(Decimal("1.00"))
                accounts_repository().save(account)
                appended.set()
                assert release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=slow_deposit, daemon=True)
    holder.start()
    assert appended.wait(10)
    try:
        account = accounts_repository().load(late.id)
        account.deposit(Decimal("2.00"))
        accounts_repository().save(account)
        follower.run_once()
        assert movement_count() == 0  # held back behind the open transaction, not skipped
    finally:
        release.set()
    holder.join(10)
    follower.run_once()
    movements = list(Movement.objects.order_by("event_id").values_list("event_id", "amount"))
    assert [amount for _, amount in movements] == [Decimal("1.00"), Decimal("2.00")]
    assert checkpoint("sample.movements").position == store.head()


def _eventually(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@requires_postgresql
def test_two_workers_running_at_once_apply_every_event_exactly_once():
    stop = threading.Event()
    followers = [worker("sample.movements", "sample.daily", poll_interval=0.2) for _ in range(2)]
    threads = []
    for follower in followers:

        def run(follower=follower):
            try:
                follower.run(stop)
            finally:
                connections.close_all()

        threads.append(threading.Thread(target=run, daemon=True))
    for thread in threads:
        thread.start()
    appended = generate_history(accounts=4, events=300)
    try:
        assert _eventually(lambda: movement_count() == appended - 4, seconds=20)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    owners = set(ProjectionCheckpoint.objects.values_list("owner", flat=True))
    assert owners == {""}  # both released on stop
    assert set(ProjectionCheckpoint.objects.values_list("status", flat=True)) == {"ok"}
    event_ids = list(Movement.objects.values_list("event_id", flat=True))
    assert len(event_ids) == len(set(event_ids)) == appended - 4
