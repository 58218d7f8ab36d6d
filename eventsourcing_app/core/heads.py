"""Remember the last event of recently used streams, so an append after a load skips a read.

The memory is only a hint: every insert re-checks in the database that the event it chains onto
is stored, and a wrong hint (left by a transaction that rolled back) costs one extra read.
"""

from __future__ import annotations

import threading
import uuid

from eventsourcing_app.conf import DEFAULTS
from eventsourcing_app.core.records import StreamHead


class StreamHeads:
    """A bounded, thread-safe map from aggregate id to its stream's last event."""

    def __init__(self, size: int = DEFAULTS["STREAM_HEAD_CACHE_SIZE"]) -> None:
        self.size = size
        self._heads: dict[uuid.UUID, StreamHead] = {}
        self._lock = threading.Lock()

    def get(self, aggregate_id: uuid.UUID) -> StreamHead | None:
        return self._heads.get(aggregate_id)

    def remember(self, aggregate_id: uuid.UUID, head: StreamHead) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._heads.pop(aggregate_id, None)
            while len(self._heads) >= self.size:
                del self._heads[next(iter(self._heads))]  # the least recently written
            self._heads[aggregate_id] = head

    def forget(self, aggregate_id: uuid.UUID) -> None:
        with self._lock:
            self._heads.pop(aggregate_id, None)
