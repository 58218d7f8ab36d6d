"""The event that records an erasure in each stream that held the subject's personal data.

Every aggregate takes it (the base class applies it as a no-op), so a command loaded before
the erasure conflicts on its save and is retried on the erased state, instead of writing back
what it had read.
"""

from __future__ import annotations

import dataclasses

from eventsourcing_app.domain.events import DomainEvent, event_type


@event_type("eventsourcing.SubjectForgotten")
@dataclasses.dataclass(frozen=True)
class SubjectForgotten(DomainEvent):
    """The data subject `subject` was forgotten: the keys `key_ids` are destroyed, and the
    stream's personal fields read as erased from here on (who and why: the metadata)."""

    subject: str
    key_ids: tuple[str, ...]
    events: int  # the stream's events whose personal fields are now unreadable
