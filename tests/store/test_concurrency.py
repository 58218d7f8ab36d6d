"""Concurrency and log order on PostgreSQL, with real transactions in real threads."""

import threading
import uuid

import pytest
from django.db import connection, connections, transaction

from eventsourcing_app.core.errors import ConcurrencyError
from eventsourcing_app.core.records import NO_STREAM, START
from eventsourcing_app.wiring import get_event_store
from tests.helpers import deposits, new_id, raw_connection, requires_postgresql

pytestmark = [requires_postgresql, pytest.mark.django_db(transaction=True)]
ACCOUNT = "ledger.Account"
WAIT = 10


class Worker(threading.Thread):
    """Run `work` in a thread with its own database connection; keep its result or error."""

    def __init__(self, work):
        super().__init__(daemon=True)
        self.work, self.result, self.error = work, None, None

    def run(self):
        try:
            self.result = self.work()
        except Exception as exc:  # reported by the test's assertions
            self.error = exc
        finally:
            connections.close_all()

    def outcome(self):
        self.join(WAIT)
        assert not self.is_alive(), "worker did not finish"
        return self.result, self.error


def test_racing_writers_on_one_stream_one_wins_and_none_is_lost():
    store = get_event_store()
    account = new_id()
    store.append(account, deposits("1.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT)
    writers = 6
    start = threading.Barrier(writers)

    def append(amount):
        def work():
            start.wait(WAIT)
            return store.append(
                account, deposits(amount), expected_version=1, aggregate_type=ACCOUNT
            )

        return work

    workers = [Worker(append(f"{n}.00")) for n in range(writers)]
    for worker in workers:
        worker.start()
    outcomes = [worker.outcome() for worker in workers]
    winners = [result for result, error in outcomes if error is None]
    losers = [error for _, error in outcomes if error is not None]
    assert len(winners) == 1
    assert len(losers) == writers - 1
    assert all(isinstance(error, ConcurrencyError) for error in losers)
    assert {(error.expected, error.actual) for error in losers} == {(1, 2)}
    stream = list(store.read_stream(account))
    assert [e.version for e in stream] == [1, 2]
    assert stream[1].data == winners[0][0].data


def test_appends_to_different_streams_do_not_wait_for_each_other():
    store = get_event_store()
    first, second = new_id(), new_id()
    appended, release = threading.Event(), threading.Event()

    def slow_writer():
        with transaction.atomic():
            store.append(
                first, deposits("1.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT
            )
            appended.set()
            assert release.wait(WAIT)

    holder = Worker(slow_writer)
    holder.start()
    assert appended.wait(WAIT)
    try:
        with connection.cursor() as cursor:
            # A table lock would make this append wait for the open transaction above.
            cursor.execute("SET lock_timeout = '2s'")
        other = Worker(
            lambda: store.append(
                second, deposits("2.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT
            )
        )
        other.start()
        _, error = other.outcome()
        assert error is None
        assert holder.is_alive(), "the first transaction must still be open"
    finally:
        release.set()
    assert holder.outcome() == (None, None)
    assert store.stream_version(first) == 1
    assert store.stream_version(second) == 1


def test_a_reader_following_the_log_never_skips_an_event_that_commits_late():
    store = get_event_store()
    early, late = new_id(), new_id()
    appended, release = threading.Event(), threading.Event()

    def writer_with_the_smaller_id():
        with transaction.atomic():
            (event,) = store.append(
                early, deposits("1.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT
            )
            appended.set()
            assert release.wait(WAIT)
        return event

    holder = Worker(writer_with_the_smaller_id)
    holder.start()
    assert appended.wait(WAIT)
    try:
        (later,) = store.append(
            late, deposits("2.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT
        )
        delivered = []
        checkpoint = START
        for event in store.read_log(after=checkpoint):
            delivered.append(event)
            checkpoint = event.position
        # A naive reader ordered by id alone would deliver the later event now and, having
        # moved past its id, never see the earlier one.
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM events WHERE id > 0 ORDER BY id")
            assert cursor.fetchall() == [(later.id,)]
    finally:
        release.set()
    earlier, error = holder.outcome()
    assert error is None
    assert earlier.id < later.id, "the scenario needs the smaller id to commit last"
    for event in store.read_log(after=checkpoint):
        delivered.append(event)
        checkpoint = event.position
    assert [e.id for e in delivered] == [earlier.id, later.id]
    assert list(store.read_log(after=checkpoint)) == []


def test_a_stream_follows_its_version_order_in_the_log_whichever_transaction_is_older():
    # A transaction takes its id at its first write. One that wrote elsewhere first, then
    # appends to a stream a younger transaction appended to meanwhile, must still come after it
    # in the log: projections and replays fold a stream in log order (found by the soak trial:
    # the transfer saga's batches against tellers' deposits; a replayed ledger differed).
    store = get_event_store()
    account, elsewhere = new_id(), new_id()
    holding, release = threading.Event(), threading.Event()

    def older_transaction():
        with transaction.atomic():
            store.append(
                elsewhere, deposits("1.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT
            )
            holding.set()
            assert release.wait(WAIT)
            return store.append(
                account, deposits("3.00"), expected_version=1, aggregate_type=ACCOUNT
            )

    older = Worker(older_transaction)
    older.start()
    assert holding.wait(WAIT)
    try:
        (first,) = store.append(
            account, deposits("2.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT
        )
    finally:
        release.set()
    appended, error = older.outcome()
    assert error is None
    (second,) = appended
    assert (first.version, second.version) == (1, 2)
    assert second.position > first.position
    stream = [e.version for e in store.read_log() if e.aggregate_id == account]
    assert stream == [1, 2]


def test_a_reader_that_appends_never_leaves_its_own_events_behind_its_checkpoint():
    # A worker's batch holds a transaction id from the moment it locks its checkpoint; if it
    # read what younger transactions committed since, the events it appends itself (the saga's
    # next steps) would sit behind the position it moves its checkpoint to, and never be read.
    store = get_event_store()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id()")  # as the checkpoint's row lock does
        younger = Worker(
            lambda: store.append(
                new_id(), deposits("1.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT
            )
        )
        younger.start()
        (committed,), error = younger.outcome()
        assert error is None
        read = list(store.read_log(START))
        checkpoint = read[-1].position if read else START
        (own,) = store.append(
            new_id(), deposits("2.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT
        )
    assert sorted(e.id for e in store.read_log(checkpoint)) == sorted([committed.id, own.id])


def test_many_concurrent_writers_and_a_tailing_reader_see_every_event_exactly_once():
    store = get_event_store()
    writers, per_writer = 4, 40
    done = threading.Event()

    def write():
        account = uuid.uuid4()
        for version in range(per_writer):
            store.append(
                account, deposits("1.00"), expected_version=version, aggregate_type=ACCOUNT
            )

    def tail():
        seen, checkpoint = [], START
        while True:
            finished = done.is_set()
            for event in store.read_log(after=checkpoint):
                seen.append(event.id)
                checkpoint = event.position
            if finished:
                return seen

    reader = Worker(tail)
    reader.start()
    workers = [Worker(write) for _ in range(writers)]
    for worker in workers:
        worker.start()
    assert all(worker.outcome() == (None, None) for worker in workers)
    done.set()
    seen, error = reader.outcome()
    assert error is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM events")
        stored = sorted(row[0] for row in cursor.fetchall())
    assert len(stored) == writers * per_writer
    assert sorted(seen) == stored
    assert len(set(seen)) == len(seen)


def _open_transaction_in(dbname: str):
    """Open a transaction that holds a transaction id, in the named database."""

    other = raw_connection(dbname=dbname)
    other.execute("SELECT pg_current_xact_id()")
    return other


def test_open_transactions_hold_back_this_databases_log_only():
    store = get_event_store()
    here = connection.settings_dict["NAME"]
    elsewhere = "postgres" if here != "postgres" else "template1"
    foreign = _open_transaction_in(elsewhere)
    try:
        (event,) = store.append(
            new_id(), deposits("1.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT
        )
        assert [e.id for e in store.read_log()] == [event.id]
    finally:
        foreign.close()
    local = _open_transaction_in(here)
    try:
        (later,) = store.append(
            new_id(), deposits("2.00"), expected_version=NO_STREAM, aggregate_type=ACCOUNT
        )
        assert [e.id for e in store.read_log()] == [event.id]  # held back, not skipped
    finally:
        local.rollback()  # ends the transaction now; a bare close() leaves it to the server
        local.close()
    assert [e.id for e in store.read_log()] == [event.id, later.id]
