"""rebuild_projections: a replay equals incremental updates, --verify finds drift, failures
leave the old read model, readers never see a half-built one, and each checkpoint's move is
recorded."""

import getpass
import threading
import time
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connections

from eventsourcing_app.backends.base import DjangoRecorder
from eventsourcing_app.core.mapper import EventMapper
from eventsourcing_app.core.records import START
from eventsourcing_app.models import CheckpointChange, Event, ProjectionCheckpoint
from eventsourcing_app.projections import rebuild as rebuild_module
from eventsourcing_app.projections import registry
from eventsourcing_app.projections.rebuild import rebuild
from eventsourcing_app.projections.worker import ProjectionWorker
from eventsourcing_app.wiring import get_event_store
from tests.helpers import requires_postgresql
from tests.projectionapp import projections
from tests.projectionapp.models import Balance, DailyCount, Movement
from tests.projections.helpers import generate_history, open_account, read_models

ASYNC = ["sample.movements", "sample.daily", "sample.fragile"]


@pytest.fixture(autouse=True)
def fragile_is_fixed(log_db, monkeypatch):
    monkeypatch.setattr(projections, "fragile_fixed", True)


def rebuild_command(*args: str) -> str:
    out = StringIO()
    call_command("rebuild_projections", "--no-progress", *args, stdout=out)
    return out.getvalue()


def catch_up() -> None:
    worker = ProjectionWorker(registry.select(ASYNC), get_event_store(), batch_size=97, owner="w")
    worker.run_once()


def test_a_rebuild_equals_what_incremental_updates_built():
    appended = generate_history(accounts=40, events=2500)
    catch_up()
    incremental = read_models()
    assert len(incremental["movements"]) == appended - 40
    output = rebuild_command("--batch-size", "300")
    for name in registry.names():
        replayed = f"{name}: rebuilt from {appended} events" in output
        assert replayed == registry.get(name).replayable
    assert read_models() == incremental
    head = get_event_store().head()
    rebuilt = ProjectionCheckpoint.objects.exclude(name="bank.transfer_saga")
    assert {cp.position for cp in rebuilt} == {head}
    open_account("Ada", "3.00")  # and the worker carries on from the rebuilt checkpoint
    catch_up()
    assert Movement.objects.count() == appended - 40 + 1


@pytest.fixture
def log_reads(monkeypatch):
    """Every page the recorder reads of the log: (after, event types asked for, positions)."""
    reads = []
    read_log = DjangoRecorder.read_log

    def spy(self, after, limit, **kwargs):
        rows = read_log(self, after, limit, **kwargs)
        reads.append((after, kwargs.get("event_types"), [event.position for event in rows]))
        return rows

    monkeypatch.setattr(DjangoRecorder, "read_log", spy)
    return reads


def test_all_projections_are_rebuilt_in_one_pass_over_the_events_they_handle(
    log_reads, monkeypatch
):
    generate_history(accounts=10, events=400)
    catch_up()
    incremental = read_models()
    log_reads.clear()  # the workers' reads
    decoded = []
    payload = EventMapper.payload
    monkeypatch.setattr(EventMapper, "payload", lambda self, stored, keys=None: (
        decoded.append(stored.id) or payload(self, stored, keys)))  # fmt: skip
    rebuild_command("--batch-size", "60")
    assert read_models() == incremental
    handled = frozenset().union(*(p.event_types for p in registry.select() if p.replayable))
    assert {frozenset(types) for _, types, _ in log_reads} == {handled}
    delivered = [position for _, _, positions in log_reads for position in positions]
    assert delivered == sorted(set(delivered))  # each event once, in the log's order
    assert len(delivered) == Event.objects.filter(event_type__in=handled).count()
    assert log_reads[0][0] == START
    assert len(decoded) == len(set(decoded)) == len(delivered)  # each event decoded once


def test_a_projection_alone_reads_only_its_own_event_types_and_catches_up_to_the_head(
    log_reads,
):
    generate_history(accounts=10, events=400)
    open_account("Last")  # the log ends with an event sample.movements does not handle
    catch_up()
    incremental = read_models()
    movements = registry.get("sample.movements")
    log_reads.clear()  # the workers' reads
    rebuild_command("sample.movements", "--batch-size", "60")
    assert read_models() == incremental
    assert {frozenset(types) for _, types, _ in log_reads} == {movements.event_types}
    delivered = sum(len(positions) for _, _, positions in log_reads)
    assert delivered == Event.objects.filter(event_type__in=movements.event_types).count()
    assert delivered < Event.objects.count()
    checkpoint = ProjectionCheckpoint.objects.get(name="sample.movements")
    assert checkpoint.position == get_event_store().head()


def test_verify_finds_a_tampered_row_and_changes_nothing():
    generate_history(accounts=5, events=200)
    catch_up()
    assert "sample.balances: matches a replay of" in rebuild_command("--verify")
    victim = Balance.objects.order_by("account_id").first()
    Balance.objects.filter(pk=victim.pk).update(balance=victim.balance + 1000)
    DailyCount.objects.update(counted_at=None)  # a volatile column: not drift
    with pytest.raises(CommandError, match=r"read models differ from a replay: sample\.balances"):
        rebuild_command("--verify")
    assert Balance.objects.get(pk=victim.pk).balance == victim.balance + 1000
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("rebuild_projections", "--no-progress", "--verify", stdout=out)
    printed = out.getvalue()
    assert "sample.balances: 2 rows differ from a replay:" in printed
    assert f"balance=Decimal('{victim.balance + 1000}')" in printed
    assert f"balance=Decimal('{victim.balance}')" in printed


def test_a_failing_handler_leaves_the_previous_read_model(monkeypatch):
    generate_history(accounts=5, events=150)
    open_account("Poison", "13.13")  # digested while the fragile projection was fixed
    catch_up()
    before = read_models()
    monkeypatch.setattr(projections, "fragile_fixed", False)  # a regression ships
    with pytest.raises(CommandError, match=r"cannot digest 13\.13; sample\.fragile was left as it"):
        rebuild_command("sample.fragile")
    assert read_models() == before


def test_unknown_names_and_an_empty_log_get_clear_answers():
    with pytest.raises(
        CommandError, match=r"unknown projection sample\.nope; known: bank\.account_balances, "
    ):
        rebuild_command("sample.nope")
    Balance.objects.create(account_id="5e1d0a1c-0000-4000-8000-000000000009", owner="kept")
    assert "the event log is empty: nothing to replay" in rebuild_command()
    assert Balance.objects.filter(owner="kept").exists()


@requires_postgresql
def test_readers_see_the_old_read_model_until_the_rebuild_commits():
    generate_history(accounts=30, events=600)
    catch_up()
    expected_rows = Balance.objects.count()
    expected_total = sum(Balance.objects.values_list("balance", flat=True))
    started, finished = threading.Event(), threading.Event()

    def slow_rebuild():
        def crawl(events: int) -> None:
            started.set()
            time.sleep(0.05)

        try:
            rebuild(
                registry.get("sample.balances"), get_event_store(), batch_size=50, progress=crawl
            )
        finally:
            finished.set()
            connections.close_all()

    thread = threading.Thread(target=slow_rebuild, daemon=True)
    thread.start()
    assert started.wait(10)
    seen = []
    while not finished.is_set():
        rows = list(Balance.objects.values_list("balance", flat=True))
        seen.append((len(rows), sum(rows, Decimal(0))))
    thread.join(10)
    assert len(seen) > 3
    assert set(seen) == {(expected_rows, expected_total)}


def test_sagas_are_never_replayed():
    with pytest.raises(CommandError, match=r"bank\.transfer_saga acts on events"):
        rebuild_command("bank.transfer_saga")


def test_a_rebuild_records_who_moved_the_checkpoint_from_where_to_where_and_why(monkeypatch):
    generate_history(accounts=3, events=60)
    catch_up()
    assert not CheckpointChange.objects.exists()  # the workers' advances are not recorded
    open_account("Late", "1.00")  # the checkpoint now lags the head
    before = ProjectionCheckpoint.objects.get(name="sample.daily").position
    monkeypatch.setattr(getpass, "getuser", lambda: "oncall")
    rebuild_command("sample.daily", "--reason", "a day's counts doubled")
    change = CheckpointChange.objects.get()
    assert (change.checkpoint, change.kind, change.changed_by, change.reason) == (
        "sample.daily",
        "rebuild",
        "oncall",
        "a day's counts doubled",
    )
    assert (change.from_position, change.to_position) == (before, get_event_store().head())
    assert before < change.to_position
    rebuild_command("sample.daily", "--by", "ada")
    assert CheckpointChange.objects.first().changed_by == "ada"


def test_inline_projections_and_verification_record_no_checkpoint_change():
    generate_history(accounts=3, events=60)
    catch_up()
    rebuild_command("sample.balances")  # inline: it has no checkpoint to move
    rebuild_command("--verify", "sample.daily")  # rolled back: nothing moved
    assert not CheckpointChange.objects.exists()


def test_inline_read_models_are_locked_in_the_order_appends_write_them(monkeypatch):
    """Named in any order, they are locked by name, as `apply_inline` writes them: a rebuild
    never holds one table while it waits on an append that holds the other."""
    generate_history(accounts=2, events=20)
    locked = []
    monkeypatch.setattr(rebuild_module, "_lock_tables", lambda p, connection: locked.append(p.name))
    names = sorted((p.name for p in registry.inline()), reverse=True)
    assert len(names) > 1
    rebuild_command(*names)
    assert locked == [p.name for p in registry.inline()] == sorted(names)
