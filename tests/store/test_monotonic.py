"""On PostgreSQL the log's head and reads never go backwards, whatever other databases do.

Write transactions in another database of the same server start and end all the time; they
must neither hold this database's readers back nor make a later read see less than an earlier
one (a client paging `/api/events/` would see the head move backwards).
"""

import itertools
import threading
import time

import psycopg
import pytest
from django.db import connection, connections

from eventsourcing_app.core.records import NO_STREAM, START
from eventsourcing_app.wiring import get_event_store
from tests.helpers import deposits, new_id, raw_connection, requires_postgresql

pytestmark = [requires_postgresql, pytest.mark.django_db(transaction=True)]
FOREIGN_WRITERS = 8
READERS = 3
ROUNDS = 600


def _connect(dbname: str) -> psycopg.Connection:
    return raw_connection(dbname=dbname)


def _write_elsewhere(dbname: str, stop: threading.Event, counted: list[int]) -> None:
    """Commit tiny write transactions in another database until stopped."""
    with _connect(dbname) as foreign:
        foreign.execute("SET synchronous_commit = off")  # short transactions, many of them
        foreign.execute("CREATE TEMPORARY TABLE churn (n int)")
        foreign.commit()
        while not stop.is_set():
            foreign.execute("INSERT INTO churn VALUES (1)")
            foreign.commit()
            counted.append(1)


def _append_and_reread(rounds: int, behind: list, heads: list) -> None:
    """Append an event, then read the head and the log after the previous one, `rounds` times.

    The only writer of this database: any event of its own a read misses was held back by a
    transaction of the other database.
    """
    store = get_event_store()
    previous = START
    try:
        for _ in range(rounds):
            (event,) = store.append(new_id(), deposits("1.00"), expected_version=NO_STREAM,
                                    aggregate_type="ledger.Account")  # fmt: skip
            head = store.head()
            heads.append(head)
            if head < event.position:
                behind.append(("head", event.position, head))
            if event.id not in [e.id for e in store.read_log(previous)]:
                behind.append(("read_log", event.position, previous))
            previous = event.position
    finally:
        connections.close_all()


def _reread(stop: threading.Event, heads: list) -> None:
    """Read the head and the whole log again and again, remembering what each read saw."""
    store = get_event_store()
    try:
        while not stop.is_set():
            heads.append((store.head(), len(list(store.read_log(START)))))
    finally:
        connections.close_all()


def test_head_and_reads_never_go_backwards_while_other_databases_write():
    here = connection.settings_dict["NAME"]
    elsewhere = "postgres" if here != "postgres" else "template1"
    stop, done, committed = threading.Event(), threading.Event(), []
    writers = [
        threading.Thread(target=_write_elsewhere, args=(elsewhere, stop, committed), daemon=True)
        for _ in range(FOREIGN_WRITERS)
    ]
    for writer in writers:
        writer.start()
    behind: list = []
    appended: list = []
    reads: list[list] = [[] for _ in range(READERS)]
    try:
        deadline = time.monotonic() + 5
        while len(committed) < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        readers = [
            threading.Thread(target=_reread, args=(done, seen), daemon=True) for seen in reads
        ]
        for reader in readers:
            reader.start()
        _append_and_reread(ROUNDS, behind, appended)
    finally:
        done.set()
        stop.set()
        for thread in [*readers, *writers]:
            thread.join(10)
    assert len(appended) == ROUNDS
    assert min(len(seen) for seen in reads) > 10
    assert len(committed) > ROUNDS  # the other database was busy the whole time
    assert behind == []  # nothing of this database held back by the other one's transactions
    for seen in [appended, *reads]:  # no reader ever sees the log shrink or its head go back
        assert [pair for pair in itertools.pairwise(seen) if pair[1] < pair[0]] == []
