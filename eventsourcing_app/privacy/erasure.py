"""Forget a data subject: destroy their key, record who did so and why, and remove every copy
of their personal data that the system keeps outside the sealed events.

In one transaction: the subject's key row is locked and destroyed; a `SubjectForgotten` event
(who, when, why; no personal data) is appended to the subject's own stream; their aggregates'
snapshots are deleted; every projection's `forget` re-projects its rows of those aggregates;
receivers of `subject_forgotten` (an app's own copies, such as stored API responses) remove
theirs; checkpoint errors that quote the data are scrubbed. After commit the process drops the
unwrapped key and, on PostgreSQL, vacuums the key table so no old row version keeps it.

The events stay as they are, so every hash chain, the ledger and every earlier digest still
verify; their personal fields read as erased from then on, in every process.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Iterator

from django.db import DatabaseError, connections, transaction
from django.dispatch import Signal
from django.utils import timezone

from eventsourcing_app.core.context import metadata_context
from eventsourcing_app.core.errors import DomainError
from eventsourcing_app.core.personal import (
    ERASED,
    PersonalFields,
    declarations,
    is_envelope,
    open_value,
)
from eventsourcing_app.core.records import NO_STREAM, NewEvent
from eventsourcing_app.models import (
    Event,
    PersonalDataKey,
    ProjectionCheckpoint,
    Snapshot,
)
from eventsourcing_app.privacy.keyring import DjangoKeyRing, unwrapped_keys

logger = logging.getLogger("eventsourcing.privacy")
SUBJECT_STREAM_TYPE = "eventsourcing.DataSubject"
SUBJECT_FORGOTTEN = "eventsourcing.SubjectForgotten"
SUBJECTS = uuid.UUID("7d1c8f0e-3b61-4c3a-9a55-5e0b6a1c2f40")  # namespace of subject streams
MAX_REASON = 500
CHUNK = 1000

# Sent inside the erasure's transaction with `subject`, `aggregate_ids` (the streams that hold
# the subject's personal data), `values` (that data, as it was, to find copies by) and `using`:
# an app removes the copies it keeps of its own. A receiver that raises undoes the erasure.
subject_forgotten = Signal()


class ErasureRefused(DomainError):
    """The subject cannot be forgotten as asked; nothing was changed. `code` says why:
    `invalid`, `unknown_subject`, `already_forgotten` or `plaintext`."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


@dataclasses.dataclass
class Erasure:
    """What forgetting one subject did."""

    subject: str
    key_id: str
    events: int  # events whose personal fields are now unreadable
    aggregate_ids: list[uuid.UUID]
    snapshots: int  # snapshots deleted
    checkpoints: int  # checkpoint errors scrubbed
    forgotten_at: object
    event_id: int  # the SubjectForgotten event


def subject_stream(subject: str) -> uuid.UUID:
    """The stream that records what happened to a data subject (their erasure)."""
    return uuid.uuid5(SUBJECTS, subject)


def forget_subject(subject: str, *, reason: str, by: str, using: str = "default") -> Erasure:
    """Forget `subject` (see the module's docstring); raise `ErasureRefused` when it cannot be
    done, naming why, with nothing changed."""
    from eventsourcing_app.wiring import get_event_store

    subject, reason = str(subject).strip(), (reason or "").strip()
    if not subject:
        raise ErasureRefused("name the data subject to forget")
    if not reason:
        raise ErasureRefused("give the reason for the erasure (--reason)")
    if len(reason) > MAX_REASON:
        raise ErasureRefused(f"the reason has {len(reason)} characters; at most {MAX_REASON}")
    with transaction.atomic(using=using):
        key = PersonalDataKey.objects.using(using).select_for_update().filter(subject=subject)
        key = key.first()
        held = list(subject_events(subject, using))
        plaintext = [event for event, fields in held if not _sealed(event, fields)]
        if plaintext:
            raise ErasureRefused(plaintext_message(subject, len(plaintext), using), "plaintext")
        if key is None:
            raise ErasureRefused(
                f"no personal data of the subject {subject} is recorded", "unknown_subject"
            )
        if key.forgotten:
            raise ErasureRefused(
                f"the subject {subject} was forgotten on {key.forgotten_at.isoformat()} by "
                f"{key.forgotten_by}: {key.reason}",
                "already_forgotten",
            )
        key_id = str(key.key_id)
        values = _values(held, key_id, using)
        aggregate_ids = sorted({event.aggregate_id for event, _ in held})
        now = timezone.now()
        if connections[using].vendor == "sqlite":
            with connections[using].cursor() as cursor:  # overwrite the key's bytes on disk
                cursor.execute("PRAGMA secure_delete = ON")
        PersonalDataKey.objects.using(using).filter(pk=key.pk).update(
            wrapped_key=None, forgotten_at=now, forgotten_by=by, reason=reason
        )
        snapshots = Snapshot.objects.using(using).filter(aggregate_id__in=aggregate_ids)
        snapshot_count = snapshots.count()
        snapshots.delete()
        _reproject(aggregate_ids, subject, using)
        subject_forgotten.send(sender=Erasure, subject=subject, aggregate_ids=aggregate_ids,
                               values=values, using=using)  # fmt: skip
        scrubbed = _scrub_checkpoints(values, using)
        with metadata_context(reason=reason, username=by):
            stored = get_event_store(using).append(
                subject_stream(subject),
                [NewEvent(SUBJECT_FORGOTTEN, {"subject": subject, "key_id": key_id,
                                              "events": len(held),
                                              "aggregate_ids": [str(a) for a in aggregate_ids]})],
                expected_version=NO_STREAM,
                aggregate_type=SUBJECT_STREAM_TYPE,
            )  # fmt: skip
        transaction.on_commit(lambda: _after_commit(key_id, using), using=using)
    return Erasure(subject, key_id, len(held), aggregate_ids, snapshot_count, scrubbed, now,
                   stored[0].id)  # fmt: skip


def subject_events(subject: str, using: str = "default") -> Iterator[tuple[Event, PersonalFields]]:
    """Yield the events whose declared personal fields are the subject's, with the fields."""
    for event_type in declarations.types():
        fields = declarations.get(event_type)
        rows = Event.objects.using(using).filter(event_type=event_type)
        if fields.subject is None:
            try:
                rows = rows.filter(aggregate_id=uuid.UUID(subject))
            except ValueError:
                continue  # a stream's subject is its id: this subject is no stream
        for event in rows.order_by("pk").iterator(chunk_size=CHUNK):
            if fields.subject is None or str(event.event_data.get(fields.subject)) == subject:
                yield event, fields


def _sealed(event: Event, fields: PersonalFields) -> bool:
    return all(is_envelope(event.event_data[name]) for name in fields.fields
               if name in event.event_data)  # fmt: skip


def plaintext_message(subject: str, count: int, using: str) -> str:
    return (
        f"{count} event{'s' if count != 1 else ''} of the subject {subject} hold personal data "
        "in plaintext, recorded before the store sealed it: a key cannot erase them, and the "
        "log is never rewritten. Copy the log into a new store that seals on the way "
        "(docs/privacy.md, 'A store that holds plaintext'), then forget the subject there."
    )


def _values(held, key_id: str, using: str) -> list[str]:
    """The subject's personal values as text, opened before the key goes (to find copies)."""
    aead = DjangoKeyRing(using).lookup([key_id]).get(key_id)
    values: set[str] = set()
    if aead is None:
        return []
    for event, fields in held:
        for name in fields.fields:
            envelope = event.event_data.get(name)
            if is_envelope(envelope) and envelope.get("kid") == key_id:
                value = open_value(aead, envelope, event.event_type, name)
                values |= _texts(value)
    return sorted(value for value in values if value)


def _texts(value) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_texts(item) for item in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_texts(item) for item in value)) if value else set()
    return {json.dumps(value)} if value is not None else set()


def _reproject(aggregate_ids: list[uuid.UUID], subject: str, using: str) -> None:
    from eventsourcing_app.projections import registry

    for projection in registry.select():
        projection.forget(aggregate_ids, subject, using)


def _scrub_checkpoints(values: list[str], using: str) -> int:
    """Replace the values in checkpoint errors (a handler's message may quote an event)."""
    scrubbed = 0
    for checkpoint in ProjectionCheckpoint.objects.using(using).exclude(last_error=""):
        text = checkpoint.last_error
        for value in values:
            text = text.replace(value, ERASED)
        if text != checkpoint.last_error:
            ProjectionCheckpoint.objects.using(using).filter(pk=checkpoint.pk).update(
                last_error=text
            )
            scrubbed += 1
    return scrubbed


def _after_commit(key_id: str, using: str) -> None:
    """Let no copy of the destroyed key outlive the commit: this process's unwrapped one, and
    the old row version that PostgreSQL keeps until a vacuum (SQLite overwrites it in place,
    `secure_delete`)."""
    unwrapped_keys().drop(key_id)
    connection = connections[using]
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"VACUUM {PersonalDataKey._meta.db_table}")
        except DatabaseError as exc:  # the erasure stands; the next autovacuum will do it
            logger.warning("could not vacuum the key table after an erasure: %s", exc)
