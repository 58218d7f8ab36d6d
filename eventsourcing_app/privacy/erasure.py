"""Forget a data subject: destroy their key, record who did so and why, and remove every copy
of their personal data that the system keeps outside the sealed events.

In one transaction: the subject's key rows are locked; a `SubjectForgotten` event (who, when,
why; no personal data) is appended to every stream that held their data, first, so that a
command loaded before conflicts on its save; the keys are destroyed; those aggregates'
snapshots are deleted; every projection's `forget` re-projects its rows of them (inline ones
may handle the event instead); receivers of `subject_forgotten` (an app's own copies, such as
stored API responses) remove theirs; projection errors that quote the data are scrubbed.
After commit the process drops the unwrapped keys and, on PostgreSQL, vacuums the key table
so that no old row version keeps them.

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
    envelope_key_id,
    is_envelope,
    open_value,
)
from eventsourcing_app.core.records import ANY, NewEvent
from eventsourcing_app.domain.erasure import SubjectForgotten
from eventsourcing_app.models import (
    Event,
    PersonalDataKey,
    ProjectionCheckpoint,
    RebuildRun,
    Snapshot,
)
from eventsourcing_app.privacy.keyring import DjangoKeyRing, sealing_keys, unwrapped_keys

logger = logging.getLogger("eventsourcing.privacy")
SUBJECT_FORGOTTEN = SubjectForgotten.type_name
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
    key_ids: list[str]  # the data keys destroyed
    events: int  # events whose personal fields are now unreadable
    aggregate_ids: list[uuid.UUID]
    snapshots: int  # snapshots deleted
    errors: int  # projection errors scrubbed (checkpoints, rebuild runs)
    forgotten_at: object
    event_ids: list[int]  # the SubjectForgotten events, one per stream


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
        keys = list(
            PersonalDataKey.objects.using(using).select_for_update().filter(subject=subject)
        )
        key_ids = sorted(str(key.key_id) for key in keys)
        held = list(subject_events(subject, set(key_ids), using))
        plaintext = [event for event, fields in held if not _sealed(event, fields)]
        if plaintext:
            raise ErasureRefused(plaintext_message(subject, len(plaintext), using), "plaintext")
        if not keys:
            raise ErasureRefused(
                f"no personal data of the subject {subject} is recorded", "unknown_subject"
            )
        live = [key for key in keys if not key.forgotten]
        if not live:
            last = max(keys, key=lambda key: key.forgotten_at)
            raise ErasureRefused(
                f"the subject {subject} was forgotten on {last.forgotten_at.isoformat()} by "
                f"{last.forgotten_by}: {last.reason}",
                "already_forgotten",
            )
        values = _values(held, {str(key.key_id) for key in live}, using)
        streams: dict[uuid.UUID, tuple[str, int]] = {}
        for event, _ in held:
            _, count = streams.get(event.aggregate_id, (event.aggregate_type, 0))
            streams[event.aggregate_id] = (event.aggregate_type, count + 1)
        aggregate_ids = sorted(streams)
        # First the record in every stream: a command that loaded one of them before now
        # conflicts on its save (and is retried on the erased state), and one that saved first
        # has committed, so that what it wrote (a snapshot, a read-model row) is removed below.
        store = get_event_store(using)
        recorded = []
        with metadata_context(reason=reason, username=by):
            for aggregate_id in aggregate_ids:
                aggregate_type, count = streams[aggregate_id]
                recorded += store.append(
                    aggregate_id,
                    [NewEvent(SUBJECT_FORGOTTEN, {"subject": subject, "key_ids": key_ids,
                                                  "events": count})],
                    expected_version=ANY,
                    aggregate_type=aggregate_type,
                )  # fmt: skip
        now = timezone.now()
        if connections[using].vendor == "sqlite":
            with connections[using].cursor() as cursor:  # overwrite the key's bytes on disk
                cursor.execute("PRAGMA secure_delete = ON")
        PersonalDataKey.objects.using(using).filter(pk__in=[key.pk for key in live]).update(
            wrapped_key=None, forgotten_at=now, forgotten_by=by, reason=reason
        )
        snapshots = Snapshot.objects.using(using).filter(aggregate_id__in=aggregate_ids)
        snapshot_count = snapshots.count()
        snapshots.delete()
        _reproject(aggregate_ids, subject, using)
        subject_forgotten.send(sender=Erasure, subject=subject, aggregate_ids=aggregate_ids,
                               values=values, using=using)  # fmt: skip
        scrubbed = _scrub_errors(values, using)
        transaction.on_commit(lambda: _after_commit(subject, key_ids, using), using=using)
    return Erasure(subject, key_ids, len(held), aggregate_ids, snapshot_count, scrubbed, now,
                   [event.id for event in recorded])  # fmt: skip


def subject_events(
    subject: str, key_ids: set[str], using: str = "default"
) -> Iterator[tuple[Event, PersonalFields]]:
    """Yield, with their declaration, the events that hold the subject's personal data: sealed
    under one of `key_ids`, or in plaintext under a declaration that names this subject. One
    pass over the events of the declared types (the event-type index)."""
    for event_type in declarations.types():
        fields = declarations.get(event_type)
        rows = Event.objects.using(using).filter(event_type=event_type).order_by("pk")
        for event in rows.iterator(chunk_size=CHUNK):
            data = event.event_data
            named = [data[name] for name in fields.fields if name in data]
            if any(envelope_key_id(value) in key_ids for value in named) or (
                any(not is_envelope(value) for value in named)
                and _subject(fields, event) == subject
            ):
                yield event, fields


def _subject(fields: PersonalFields, event: Event) -> str | None:
    try:
        return fields.subject_of(event.aggregate_id, event.event_data)
    except ValueError:
        return None


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


def _values(held, key_ids: set[str], using: str) -> list[str]:
    """The subject's personal values as text, opened before the keys go (to find copies)."""
    keys = DjangoKeyRing(using).lookup(key_ids)
    values: set[str] = set()
    for event, fields in held:
        for name in fields.fields:
            envelope = event.event_data.get(name)
            key_id = envelope_key_id(envelope)
            if key_id is not None and keys.get(key_id) is not None:
                value = open_value(keys[key_id], envelope, event.event_type, name)
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


def _scrub_errors(values: list[str], using: str) -> int:
    """Replace the values in the errors kept of projections (a handler's message may quote
    the event it failed on): checkpoints and background rebuild runs. Return how many."""
    scrubbed = 0
    for model, field in ((ProjectionCheckpoint, "last_error"), (RebuildRun, "error")):
        for row in model.objects.using(using).exclude(**{field: ""}).only("pk", field):
            text = original = getattr(row, field)
            for value in values:
                text = text.replace(value, ERASED)
            if text != original:
                model.objects.using(using).filter(pk=row.pk).update(**{field: text})
                scrubbed += 1
    return scrubbed


def _after_commit(subject: str, key_ids: list[str], using: str) -> None:
    """Let no copy of the destroyed key outlive the commit: this process's unwrapped one, and
    the old row version that PostgreSQL keeps until a vacuum (SQLite overwrites it in place,
    `secure_delete`)."""
    for key_id in key_ids:
        unwrapped_keys().drop(key_id)
    sealing_keys().drop(using, subject)
    connection = connections[using]
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"VACUUM {PersonalDataKey._meta.db_table}")
        except DatabaseError as exc:  # the erasure stands; the next autovacuum will do it
            logger.warning("could not vacuum the key table after an erasure: %s", exc)
