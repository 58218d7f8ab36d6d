"""The catch-up worker: follow the log from each projection's checkpoint, in batches.

Each batch is one transaction: lock the checkpoint row, read the events after it, apply them,
flush the read model, move the checkpoint. A crash anywhere rolls the whole batch back, so no
event is applied twice or lost. Ownership is a lease on the checkpoint row; the batch checks
it under the lock, so a worker that lost its lease cannot write.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import traceback
import uuid

import psycopg
from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from eventsourcing_app.backends.base import NOTIFY_CHANNEL
from eventsourcing_app.core.store import EventStore
from eventsourcing_app.following import checkpoints
from eventsourcing_app.models import ProjectionCheckpoint
from eventsourcing_app.projections import Batch, HandlerFailed, Projection

logger = logging.getLogger("eventsourcing.projections")


class OwnershipLost(Exception):
    """Another worker took the projection over."""


class ProjectionFailed(Exception):
    """A batch failed; the checkpoint records the event and the error."""


class ProjectionRunner:
    """Apply one projection's next batch of events, exactly once."""

    def __init__(
        self, projection: Projection, store: EventStore, *, using: str, owner: str, batch_size: int
    ) -> None:
        self.projection = projection
        self.store = store
        self.using = using
        self.owner = owner
        self.batch_size = batch_size

    def run_batch(self) -> int:
        """Apply the events after the checkpoint (up to a batch); return how many were read."""
        name = self.projection.name
        events = []
        started = time.perf_counter()
        try:
            with transaction.atomic(using=self.using):
                checkpoint = checkpoints.lock(name, self.using)
                if checkpoint.owner != self.owner:
                    raise OwnershipLost(f"{name} is now run by {checkpoint.owner or 'nobody'}")
                events = list(self.store.read_log(checkpoint.position, limit=self.batch_size))
                if not events:
                    return 0
                batch = Batch(self.using)
                self.projection.apply(events, batch)
                batch.flush()
                checkpoints.advance(name, events[-1].position, self.using)
        except (OwnershipLost, ProjectionFailed):
            raise
        except Exception as exc:
            failed_on = (
                exc.event if isinstance(exc, HandlerFailed) else (events[0] if events else None)
            )
            error = "".join(traceback.format_exception_only(exc)).strip()
            checkpoints.fail(name, failed_on, error, self.using)
            logger.error("projection %s stopped: %s", name, error)
            raise ProjectionFailed(error) from exc
        logger.info(
            "projection %s applied %d events up to %s in %.1f ms",
            name,
            len(events),
            events[-1].position,
            (time.perf_counter() - started) * 1000,
        )
        return len(events)


class ProjectionWorker:
    """Run async projections until told to stop, waking on new events."""

    def __init__(
        self,
        projections: list[Projection],
        store: EventStore,
        *,
        using: str = "default",
        batch_size: int = 500,
        poll_interval: float = 5.0,
        lease: dt.timedelta = dt.timedelta(seconds=30),
        retry_failed_after: dt.timedelta = dt.timedelta(seconds=60),
        owner: str | None = None,
    ) -> None:
        self.using = using
        self.store = store
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.poll_interval = poll_interval
        self.lease = lease
        self.retry_failed_after = retry_failed_after
        self.runners = [
            ProjectionRunner(p, store, using=using, owner=self.owner, batch_size=batch_size)
            for p in projections
            if not p.inline
        ]
        self._started_at = timezone.now()
        self._ensured = False

    @property
    def names(self) -> list[str]:
        return [runner.projection.name for runner in self.runners]

    def run(self, stop: threading.Event) -> None:
        """Follow the log until `stop` is set; then release every projection.

        A database that goes away is waited for, not fatal: the worker logs, reconnects and
        carries on from the checkpoints.
        """
        waiter = LogWaiter(self.using, self.poll_interval)
        logger.info("worker %s runs %s", self.owner, ", ".join(self.names) or "no projections")
        try:
            while not stop.is_set():
                try:
                    read = self.run_once(stop)
                except (DatabaseError, psycopg.Error) as exc:
                    logger.warning(
                        "database error, retrying in %.1f s: %s", self.poll_interval, exc
                    )
                    waiter.close()
                    connections[self.using].close()
                    stop.wait(self.poll_interval)
                    continue
                if read == 0:
                    waiter.wait(stop)
        finally:
            try:
                for name in self.names:
                    checkpoints.release(name, self.owner, self.using)
            except DatabaseError as exc:
                logger.warning("could not release projections (leases will expire): %s", exc)
            waiter.close()
            connections[self.using].close()
            logger.info("worker %s stopped", self.owner)

    def run_once(self, stop: threading.Event | None = None) -> int:
        """Bring every projection this worker owns up to date; return the events read."""
        if not self._ensured:
            checkpoints.ensure(self.names, self.using)
            self._ensured = True
        total = 0
        for runner in self.runners:
            if stop is not None and stop.is_set():
                break
            checkpoint = checkpoints.claim(
                runner.projection.name, self.owner, self.lease, self.using
            )
            if checkpoint is None or not self._due(checkpoint):
                continue
            try:
                while read := runner.run_batch():
                    total += read
                    if read < runner.batch_size or (stop is not None and stop.is_set()):
                        break
            except (ProjectionFailed, OwnershipLost) as exc:
                logger.warning("projection %s: %s", runner.projection.name, exc)
        return total

    def _due(self, checkpoint: ProjectionCheckpoint) -> bool:
        """A failed projection is retried when this worker starts and then now and again."""
        if checkpoint.status != ProjectionCheckpoint.FAILED or checkpoint.failed_at is None:
            return True
        if checkpoint.failed_at < self._started_at:
            return True
        return timezone.now() - checkpoint.failed_at >= self.retry_failed_after


class LogWaiter:
    """Sleep until events are appended: woken by PostgreSQL's NOTIFY, or by the poll interval
    (SQLite, or a NOTIFY connection that was lost and is reopened on the next wait)."""

    def __init__(self, using: str, poll_interval: float) -> None:
        self.using = using
        self.poll_interval = poll_interval
        self._listener: psycopg.Connection | None = None

    def wait(self, stop: threading.Event) -> None:
        deadline = time.monotonic() + self.poll_interval
        listener = self._listen()
        while not stop.is_set() and (remaining := deadline - time.monotonic()) > 0:
            step = min(remaining, 0.5)
            if listener is None:
                stop.wait(step)
                continue
            try:
                if any(True for _ in listener.notifies(timeout=step, stop_after=1)):
                    return
            except psycopg.Error as exc:
                logger.warning("lost the NOTIFY connection, will reconnect: %s", exc)
                self.close()
                listener = None

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _listen(self) -> psycopg.Connection | None:
        connection = connections[self.using]
        if connection.vendor != "postgresql":
            return None
        if self._listener is None:
            try:
                params = connection.get_connection_params()
                for key in ("cursor_factory", "context", "prepare_threshold"):
                    params.pop(key, None)
                self._listener = psycopg.connect(**params, autocommit=True)
                self._listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
            except psycopg.Error as exc:
                logger.warning("cannot LISTEN for new events, polling instead: %s", exc)
                self._listener = None
        return self._listener
