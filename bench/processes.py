"""Store writers in separate processes: throughput, the no-skip tail, and a same-version race.

`WriterPool` starts `PROCESSES` worker processes once (multiprocessing, 'spawn' start method);
each sets Django up as bench/run.py does (`setup_django()`: DEBUG off) and then waits for jobs:

- `("write", aggregate_id, seconds)`: open a Django connection, wait for the other workers,
  append one event per `EventStore.append` call to its own aggregate for `seconds`, report the
  count and its start and end time (`time.monotonic()`, one clock for every process).
- `("race", aggregate_id, expected_version)`: wait for the other workers, then append one event
  to the shared aggregate expecting `expected_version`; report whether it was accepted.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import traceback
import uuid

PROCESSES = 4
START_TIMEOUT = 120.0
JOB_TIMEOUT = 60.0


def _worker(inbox, outbox, barrier) -> None:
    from bench.environment import setup_django

    setup_django()
    from django.db import connection

    from bench.scratch import AGGREGATE_TYPE, EVENT_TYPE
    from bench.writers import StoreWriter
    from eventsourcing_app.core.errors import ConcurrencyError
    from eventsourcing_app.core.records import NewEvent
    from eventsourcing_app.wiring import get_event_store

    outbox.put(("ready",))
    while True:
        job = inbox.get()
        if job is None:
            break
        try:
            if job[0] == "write":
                _, aggregate_id, seconds = job
                writer = StoreWriter()
                writer.aggregate_id = aggregate_id
                writer.open()
                try:
                    barrier.wait(JOB_TIMEOUT)
                    began = time.monotonic()
                    deadline = began + seconds
                    count = 0
                    while time.monotonic() < deadline:
                        count += writer.step()
                    outbox.put(("wrote", count, began, time.monotonic()))
                finally:
                    writer.close()
            elif job[0] == "race":
                _, aggregate_id, expected = job
                store = get_event_store()
                connection.ensure_connection()
                event = NewEvent(EVENT_TYPE, {"n": expected + 1, "amount": "10.00"})
                barrier.wait(JOB_TIMEOUT)
                try:
                    store.append(
                        aggregate_id,
                        [event],
                        expected_version=expected,
                        aggregate_type=AGGREGATE_TYPE,
                    )
                    outbox.put(("raced", True))
                except ConcurrencyError:
                    outbox.put(("raced", False))
        except BaseException:
            outbox.put(("error", traceback.format_exc()))
    connection.close()


class WriterPool:
    """`PROCESSES` worker processes, started once and given jobs round after round."""

    def __init__(self, processes: int = PROCESSES) -> None:
        context = multiprocessing.get_context("spawn")
        self.size = processes
        self.inboxes = [context.Queue() for _ in range(processes)]
        self.outbox = context.Queue()
        self.barrier = context.Barrier(processes)
        self.processes = [
            context.Process(target=_worker, args=(inbox, self.outbox, self.barrier), daemon=True)
            for inbox in self.inboxes
        ]
        for process in self.processes:
            process.start()
        for _ in range(processes):
            self.result(START_TIMEOUT)

    def result(self, timeout: float = JOB_TIMEOUT) -> tuple:
        try:
            message = self.outbox.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"a writer process did not answer within {timeout:.0f} s") from None
        if message[0] == "error":
            raise RuntimeError(f"a writer process failed:\n{message[1]}")
        return message

    def send(self, jobs: list[tuple]) -> None:
        for inbox, job in zip(self.inboxes, jobs, strict=True):
            inbox.put(job)

    def close(self) -> None:
        for inbox in self.inboxes:
            inbox.put(None)
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.terminate()
                process.join()


class ProcessRun:
    """One timed write job on every worker, shaped like `WriterRun` for the tail check."""

    def __init__(self, pool: WriterPool, seconds: float) -> None:
        self.pool = pool
        self.seconds = seconds
        self.aggregate_ids = [uuid.uuid4() for _ in range(pool.size)]
        self.results: list[tuple] = []

    def start(self) -> ProcessRun:
        self.pool.send([("write", aggregate, self.seconds) for aggregate in self.aggregate_ids])
        return self

    def running(self) -> bool:
        """Collect any finished worker's result without waiting; True while one is missing."""
        while len(self.results) < self.pool.size:
            try:
                message = self.pool.outbox.get_nowait()
            except queue.Empty:
                return True
            if message[0] == "error":
                raise RuntimeError(f"a writer process failed:\n{message[1]}")
            self.results.append(message)
        return False

    def join(self) -> float:
        """Wait for every worker and return events per second over the whole run."""
        while len(self.results) < self.pool.size:
            self.results.append(self.pool.result(self.seconds + JOB_TIMEOUT))
        began = min(result[2] for result in self.results)
        ended = max(result[3] for result in self.results)
        return sum(result[1] for result in self.results) / (ended - began)


def events_per_second(pool: WriterPool, seconds: float) -> float:
    return ProcessRun(pool, seconds).start().join()


def race_check(pool: WriterPool, rounds: int) -> dict:
    """Every worker appends to one aggregate with the same expected version, `rounds` times.

    Exactly one append must win each round. A round with no winner or with more than one is a
    failure; `lost_updates` counts the winners beyond the first (each overwrote a peer's
    decision made on the same version), and the stream must end with one event per winner.
    """
    from eventsourcing_app.wiring import get_event_store

    store = get_event_store()
    aggregate_id = uuid.uuid4()
    winners_per_round: list[int] = []
    version = 0
    for _ in range(rounds):
        pool.send([("race", aggregate_id, version)] * pool.size)
        winners = sum(1 for _ in range(pool.size) if pool.result()[1])
        winners_per_round.append(winners)
        version = store.stream_version(aggregate_id) or 0
    events = list(store.read_stream(aggregate_id))
    contiguous = [event.version for event in events] == list(range(1, len(events) + 1))
    return {
        "processes": pool.size,
        "rounds": rounds,
        "one_winner": sum(1 for winners in winners_per_round if winners == 1),
        "no_winner": sum(1 for winners in winners_per_round if winners == 0),
        "several_winners": sum(1 for winners in winners_per_round if winners > 1),
        "lost_updates": sum(max(winners - 1, 0) for winners in winners_per_round),
        "accepted": sum(winners_per_round),
        "stream_events": len(events),
        "contiguous": contiguous,
        "winners_per_round": winners_per_round,
    }


def race_ok(check: dict) -> bool:
    return (
        check["one_winner"] == check["rounds"]
        and check["lost_updates"] == 0
        and check["stream_events"] == check["accepted"]
        and check["contiguous"]
    )
