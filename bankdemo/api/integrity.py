"""Refuse to serve a replay of a stream whose hash chain or sealed ledger leaves no longer hold."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from bankdemo.api import schema
from eventsourcing_app.core.repository import Repository
from eventsourcing_app.core.verification import ChainBreak
from eventsourcing_app.ledger.integrity import stream_integrity
from eventsourcing_app.wiring import get_event_store, get_recorder

DESCRIPTION = (
    "integrity_broken: the stream's hash chain does not verify, or an event the ledger sealed "
    "was rewritten, moved or removed; no state is rebuilt from it (`first_broken` names the "
    "first event at fault; `manage.py verify_events` tells more)"
)


class IntegrityBroken(Exception):
    """A stream failed its integrity check, so nothing may be replayed from it."""

    def __init__(self, aggregate_id: uuid.UUID, first: ChainBreak, count: int) -> None:
        super().__init__(
            f"stream {aggregate_id} failed its integrity check ({count} problem"
            f"{'' if count == 1 else 's'}), so no state is rebuilt from it: first, {first}"
        )
        self.first = first

    def first_broken(self) -> dict:
        return {
            "event_id": self.first.event_id,
            "version": self.first.version,
            "reason": self.first.reason,
        }


def require_intact(aggregate_id: uuid.UUID, using: str = "default") -> None:
    """Raise `IntegrityBroken` unless the stream's chain and its sealed leaves all hold.

    One pass over the stream and its leaves; a stream with no events is intact (the replay
    that follows answers its 404).
    """
    report = stream_integrity(get_recorder(using), aggregate_id, using)
    if not report.intact:
        raise IntegrityBroken(aggregate_id, report.breaks[0], report.break_count)


def verified_replay(aggregate_class, aggregate_id: uuid.UUID, using: str = "default", **target):
    """Check the stream, then rebuild the aggregate from its events alone.

    Snapshots carry no hash, so a replay served as evidence does not start from one: a
    forged snapshot on an intact stream would otherwise show through.
    """
    require_intact(aggregate_id, using)
    return Repository(aggregate_class, get_event_store(using)).load(aggregate_id, **target)


class ChainBreakOut(serializers.Serializer):
    event_id = serializers.IntegerField(help_text="the event's id (its place in the log)")
    version = serializers.IntegerField(help_text="its version in the stream")
    reason = serializers.CharField(help_text="what does not hold, for people")


class IntegrityErrorOut(schema.ErrorOut):
    """The error body of a 409 integrity_broken."""

    first_broken = ChainBreakOut(help_text="the first event at fault, by version")


INTEGRITY_BROKEN = OpenApiResponse(IntegrityErrorOut, description=DESCRIPTION)
