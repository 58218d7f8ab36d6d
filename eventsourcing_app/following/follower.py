"""The checkpointed log follower: the one loop that projection workers and the Kafka relay share.

For each sink: claim its checkpoint (a lease), read a batch of the log after it, hand the batch
to the sink, check the lease is still ours, then move the checkpoint or record the failure; when
nothing is left, wait for new events; back off while the database is away; release on stop.

Sinks differ in one thing besides their handler: when the checkpoint moves. A read model moves
it in the same transaction as its writes (`checkpoint_in_transaction`), so a crash never applies
an event twice or loses one; a broker moves it after the sink confirmed the batch, so a crash
re-sends at most that batch.
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
from collections.abc import Callable, Sequence
from typing import Protocol

from django.db import Error as DatabaseError
from django.db import InterfaceError, OperationalError, connections, transaction
from django.utils import timezone

from eventsourcing_app import conf
from eventsourcing_app.core.errors import BatchFailed, HandlerFailed, OwnershipLost
from eventsourcing_app.core.records import Position, StoredEvent
from eventsourcing_app.core.store import EventStore
from eventsourcing_app.following import checkpoints
from eventsourcing_app.models import ProjectionCheckpoint
from eventsourcing_app.wiring import log_waiter

logger = logging.getLogger("eventsourcing.following")
MAX_BACKOFF = 30.0
# A lost or refused connection (a restart, a failover) fails a batch without being the sink's
# failure: the checkpoint is not marked failed, the follower backs off and reconnects.
DATABASE_AWAY = (OperationalError, InterfaceError)


class Sink(Protocol):
    """Where a follower delivers the log: a read model, a broker, a ledger."""

    name: str  # the checkpoint's name
    checkpoint_in_transaction: bool  # True: with the sink's writes; False: after it confirmed
    logger: logging.Logger  # where the follower reports the sink's failures
    batch_size: int | None  # events per batch; None: the follower's
    # How the sink reads the log after a position (None: the store's full events, in batches);
    # a sink that needs less of each event reads less.
    read_log: Callable[[Position, int], Sequence[StoredEvent]] | None

    def handle(self, events: Sequence[StoredEvent]) -> None:
        """Deliver a batch; raise to refuse it."""

    def delivered(self, events: Sequence[StoredEvent], milliseconds: float) -> None:
        """Log a batch that was delivered and checkpointed."""

    def caught_up(self) -> None:
        """Do what is due when the sink has delivered everything there was (may be nothing)."""

    def retry_delay(self, failures: int) -> float:
        """Return the seconds to wait before retrying after `failures` failed batches in a row."""

    def close(self) -> None:
        """Finish what is in flight (the follower is stopping)."""


def default_owner() -> str:
    """Return an owner name that tells operators which process holds a lease."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LogFollower:
    """Follow the log for a set of sinks, each from a checkpoint of its own."""

    def __init__(
        self,
        sinks: Sequence[Sink],
        store: EventStore,
        *,
        using: str = "default",
        owner: str | None = None,
        batch_size: int | None = None,
        poll_interval: float | None = None,
        lease: dt.timedelta | None = None,
    ) -> None:
        self.sinks = list(sinks)
        self.store = store
        self.using = using
        self.owner = owner or default_owner()
        self.batch_size = batch_size or conf.get("PROJECTION_BATCH_SIZE")
        self.poll_interval = poll_interval or conf.poll_interval(using)
        self.lease = lease if lease is not None else dt.timedelta(seconds=conf.get("LEASE_SECONDS"))
        self._failures = {sink.name: 0 for sink in self.sinks}
        self._started_at = timezone.now()
        self._ensured = False

    @property
    def names(self) -> list[str]:
        return [sink.name for sink in self.sinks]

    def follow_batch(self, sink: Sink) -> int:
        """Claim `sink`'s checkpoint and deliver the next batch; return how many events it had.

        Return 0 when caught up or when another follower's lease is fresh. Raise `BatchFailed`
        (the checkpoint records the error) or `OwnershipLost` (the lease was taken over).
        """
        self._ensure()
        if checkpoints.claim(sink.name, self.owner, self.lease, self.using) is None:
            return 0
        return self.deliver(sink)

    def run_once(self, stop: threading.Event | None = None) -> int:
        """Bring every sink this follower may own up to date; return the events read.

        A sink that fails or whose lease another follower holds is skipped; the rest go on.
        """
        self._ensure()
        total = 0
        for sink in self.sinks:
            if stop is not None and stop.is_set():
                break
            checkpoint = checkpoints.claim(sink.name, self.owner, self.lease, self.using)
            if checkpoint is None or not self._due(sink, checkpoint):
                continue
            try:
                while read := self.deliver(sink):
                    total += read
                    if read < self._batch_size(sink) or (stop is not None and stop.is_set()):
                        break
                if stop is None or not stop.is_set():
                    sink.caught_up()
            except (BatchFailed, OwnershipLost) as exc:
                sink.logger.warning("%s: %s", sink.name, exc)
        return total

    def run(self, stop: threading.Event) -> None:
        """Follow the log until `stop` is set; then release every checkpoint.

        A database that goes away is waited for with a growing back-off, not fatal: the
        follower logs, reconnects and carries on from the checkpoints.
        """
        waiter = log_waiter(self.using, self.poll_interval)
        backoff = min(1.0, self.poll_interval)
        logger.info("%s follows the log for %s", self.owner, ", ".join(self.names) or "nothing")
        try:
            while not stop.is_set():
                try:
                    read = self.run_once(stop)
                except DatabaseError as exc:
                    logger.warning("database error, retrying in %.1f s: %s", backoff, exc)
                    waiter.close()
                    connections[self.using].close()
                    stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                backoff = min(1.0, self.poll_interval)
                if read == 0:
                    waiter.wait(stop, self._next_wait())
        finally:
            for sink in self.sinks:
                sink.close()
            try:
                for name in self.names:
                    checkpoints.release(name, self.owner, self.using)
            except DatabaseError as exc:
                logger.warning("could not release %s (leases will expire): %s", self.names, exc)
            waiter.close()
            connections[self.using].close()
            logger.info("%s stopped", self.owner)

    def deliver(self, sink: Sink) -> int:
        """Deliver the batch after `sink`'s checkpoint, provided this follower owns it.

        Return how many events the batch had (0: caught up). Raise `OwnershipLost` when another
        follower holds the checkpoint now, and `BatchFailed` when the sink refused the batch.
        """
        events: list[StoredEvent] = []
        started = time.perf_counter()
        try:
            if sink.checkpoint_in_transaction:
                with transaction.atomic(using=self.using):
                    position = self._owned(sink).position
                    events = self._read(sink, position)
                    if not events:
                        return 0
                    sink.handle(events)
                    checkpoints.advance(sink.name, events[-1].position, self.using)
            else:
                position = checkpoints.position(sink.name, self.using)
                events = self._read(sink, position)
                if not events:
                    return 0
                sink.handle(events)
                with transaction.atomic(using=self.using):
                    self._owned(sink)
                    checkpoints.advance(sink.name, events[-1].position, self.using)
        except OwnershipLost:
            raise
        except Exception as exc:
            cause = exc.error if isinstance(exc, HandlerFailed) else exc
            if isinstance(cause, DATABASE_AWAY):
                raise cause from exc  # not the sink's fault: `run` backs off and tries again
            self._failures[sink.name] += 1
            failed_on = exc.event if isinstance(exc, HandlerFailed) else (events or [None])[0]
            error = "".join(traceback.format_exception_only(exc)).strip()
            checkpoints.fail(sink.name, failed_on, error, self.using)
            if isinstance(exc, HandlerFailed):  # its text may quote the event: not in logs
                told = f"{exc.summary} (its checkpoint has the error's text)"
            else:
                told = error
            sink.logger.error("%s stopped: %s", sink.name, told)
            raise BatchFailed(told) from exc
        self._failures[sink.name] = 0
        sink.delivered(events, (time.perf_counter() - started) * 1000)
        return len(events)

    def _batch_size(self, sink: Sink) -> int:
        return sink.batch_size or self.batch_size

    def _read(self, sink: Sink, position: Position) -> list[StoredEvent]:
        if sink.read_log is not None:
            return list(sink.read_log(position, self._batch_size(sink)))
        return list(self.store.read_log(position, limit=self._batch_size(sink)))

    def _owned(self, sink: Sink) -> ProjectionCheckpoint:
        checkpoint = checkpoints.lock(sink.name, self.using)
        if checkpoint.owner != self.owner:
            raise OwnershipLost(f"{sink.name} is now run by {checkpoint.owner or 'nobody'}")
        return checkpoint

    def _ensure(self) -> None:
        if not self._ensured:
            checkpoints.ensure(self.names, self.using)
            self._ensured = True

    def _due(self, sink: Sink, checkpoint: ProjectionCheckpoint) -> bool:
        """A failed sink is retried when this follower starts, then after its retry delay."""
        if checkpoint.status != ProjectionCheckpoint.FAILED or checkpoint.failed_at is None:
            return True
        if checkpoint.failed_at < self._started_at:
            return True
        waited = (timezone.now() - checkpoint.failed_at).total_seconds()
        return waited >= sink.retry_delay(self._failures[sink.name])

    def _next_wait(self) -> float:
        """Wait for new events, but no longer than until a failed sink is due again."""
        delays = [
            sink.retry_delay(failures)
            for sink in self.sinks
            if (failures := self._failures[sink.name])
        ]
        return min([self.poll_interval, *delays])
