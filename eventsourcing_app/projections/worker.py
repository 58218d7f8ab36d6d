"""The projection worker: async read models kept up to date by the log follower.

Each batch is one transaction: the checkpoint row is locked, the events after it are read and
applied, the read model is flushed and the checkpoint moves. A crash anywhere rolls the whole
batch back, so no event is applied twice or lost. A handler that raises stops only its
projection (the checkpoint records the event and the error) until it is retried.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from eventsourcing_app import conf
from eventsourcing_app.core.records import StoredEvent
from eventsourcing_app.core.store import EventStore
from eventsourcing_app.following.follower import LogFollower
from eventsourcing_app.ledger.sealer import LedgerSink
from eventsourcing_app.projections.base import Batch, Projection

logger = logging.getLogger("eventsourcing.projections")


class ProjectionSink:
    """Apply batches to one projection's read model; the checkpoint moves with its writes."""

    checkpoint_in_transaction = True
    batch_size = None  # the follower's
    read_log = None  # the store's full events
    logger = logger

    def __init__(self, projection: Projection, using: str, retry_failed_after: dt.timedelta):
        self.projection = projection
        self.name = projection.name
        self.using = using
        self.retry_failed_after = retry_failed_after

    def handle(self, events: Sequence[StoredEvent]) -> None:
        batch = Batch(self.using)
        self.projection.apply(events, batch)
        batch.flush()

    def delivered(self, events: Sequence[StoredEvent], milliseconds: float) -> None:
        logger.info("projection %s applied %d events up to %s in %.1f ms",
                    self.name, len(events), events[-1].position, milliseconds)  # fmt: skip

    def retry_delay(self, failures: int) -> float:
        return self.retry_failed_after.total_seconds()

    def caught_up(self) -> None:
        """Nothing is due between batches."""

    def close(self) -> None:
        """Nothing in flight: every batch committed or rolled back."""


class ProjectionWorker(LogFollower):
    """Run async projections (and, with `ledger`, the ledger sealer) until told to stop."""

    def __init__(
        self,
        projections: Sequence[Projection],
        store: EventStore,
        *,
        using: str = "default",
        batch_size: int | None = None,
        poll_interval: float | None = None,
        lease: dt.timedelta | None = None,
        retry_failed_after: dt.timedelta | None = None,
        owner: str | None = None,
        ledger: bool = False,
    ) -> None:
        if retry_failed_after is None:
            retry_failed_after = dt.timedelta(seconds=conf.get("RETRY_FAILED_SECONDS"))
        sinks = [
            ProjectionSink(projection, using, retry_failed_after)
            for projection in projections
            if not projection.inline
        ]
        if ledger:
            sinks.append(LedgerSink(using))
        super().__init__(
            sinks,
            store,
            using=using,
            owner=owner,
            batch_size=batch_size,
            poll_interval=poll_interval,
            lease=lease,
        )
