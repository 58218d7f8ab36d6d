"""Writers that run in threads for a fixed time: plain psycopg inserts and EventStore appends.

Each writer appends to its own aggregate (one stream, growing), so writers never conflict.
"""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
from django.db import connection
from psycopg.types.json import Jsonb

from bench.scratch import AGGREGATE_TYPE, EVENT_TYPE, PLAIN_TABLE
from eventsourcing_app.core.records import NO_STREAM, NewEvent
from eventsourcing_app.wiring import get_event_store


def event_data(number: int) -> dict:
    return {"n": number, "amount": "10.00"}


class PlainWriter:
    """Insert `batch` rows per transaction into the plain table on its own psycopg connection."""

    def __init__(self, info: str, batch: int = 1) -> None:
        self.info = info
        self.batch = batch
        self.aggregate_id = uuid.uuid4()
        self.version = 0
        rows = ", ".join(["(%s, %s, %s)"] * batch)
        self.sql = f"INSERT INTO {PLAIN_TABLE} (aggregate_id, version, data) VALUES {rows}"

    def open(self) -> None:
        self.conn = psycopg.connect(self.info)  # autocommit off: commit() ends each transaction

    def step(self) -> int:
        params: list = []
        for version in range(self.version + 1, self.version + self.batch + 1):
            params += (self.aggregate_id, version, Jsonb(event_data(version)))
        self.conn.execute(self.sql, params)
        self.conn.commit()
        self.version += self.batch
        return self.batch

    def close(self) -> None:
        self.conn.close()


class StoreWriter:
    """Append `batch` events per call through EventStore, on this thread's Django connection."""

    def __init__(self, batch: int = 1) -> None:
        self.batch = batch
        self.aggregate_id = uuid.uuid4()
        self.version = 0

    def open(self) -> None:
        self.store = get_event_store()
        connection.ensure_connection()

    def step(self) -> int:
        first = self.version + 1
        events = [NewEvent(EVENT_TYPE, event_data(n)) for n in range(first, first + self.batch)]
        self.store.append(
            self.aggregate_id,
            events,
            expected_version=self.version or NO_STREAM,
            aggregate_type=AGGREGATE_TYPE,
        )
        self.version += self.batch
        return self.batch

    def close(self) -> None:
        connection.close()


class WriterRun:
    """Writers in threads, opened first, then started together and stopped after `seconds`."""

    def __init__(self, writers: list, seconds: float) -> None:
        self.writers = writers
        self.seconds = seconds
        self.counts = [0] * len(writers)
        self.spans: list[tuple[float, float]] = []
        self.errors: list[BaseException] = []
        self.barrier = threading.Barrier(len(writers) + 1)
        self.threads = [
            threading.Thread(target=self._work, args=(index,), daemon=True)
            for index in range(len(writers))
        ]

    def start(self) -> WriterRun:
        for thread in self.threads:
            thread.start()
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            self.join()
        return self

    def running(self) -> bool:
        return any(thread.is_alive() for thread in self.threads)

    def join(self) -> float:
        """Wait for every writer and return events per second over the whole run."""
        for thread in self.threads:
            thread.join()
        if self.errors:
            raise self.errors[0]
        if not self.spans:
            raise RuntimeError("no writer ran")
        began = min(start for start, _ in self.spans)
        ended = max(end for _, end in self.spans)
        return sum(self.counts) / (ended - began)

    @property
    def aggregate_ids(self) -> list[uuid.UUID]:
        return [writer.aggregate_id for writer in self.writers]

    def _work(self, index: int) -> None:
        writer = self.writers[index]
        try:
            writer.open()
        except BaseException as exc:
            self._fail(exc)
            return
        try:
            self.barrier.wait()
            self._loop(index, writer)
        except BaseException as exc:
            self._fail(exc)
        finally:
            writer.close()

    def _loop(self, index: int, writer) -> None:
        began = time.perf_counter()
        deadline = began + self.seconds
        count = 0
        while time.perf_counter() < deadline:
            count += writer.step()
        self.counts[index] = count
        self.spans.append((began, time.perf_counter()))

    def _fail(self, exc: BaseException) -> None:
        if not isinstance(exc, threading.BrokenBarrierError):
            self.errors.append(exc)
        self.barrier.abort()


def events_per_second(writers: list, seconds: float) -> float:
    """Run `writers` together for `seconds` and return their combined events per second."""
    return WriterRun(writers, seconds).start().join()
