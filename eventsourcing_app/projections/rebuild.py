"""Rebuild projections by replaying the log, or verify their read models against a replay.

A rebuild of any number of projections is one pass over the log, reading only the event types
they handle, in one transaction: readers keep seeing the previous read models until it commits,
and a failure leaves them all as they were. An async projection's checkpoint row is locked for
the duration, so workers wait; an inline projection's tables are locked against writers, so
appends that would update them wait, and the replay can take every committed event without
holding back. An async projection's rebuild is recorded as a checkpoint change (who, why, from
where to where) in the same transaction.
"""

from __future__ import annotations

import getpass
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from django.db import connections, transaction
from django.db.models.fields import AutoFieldMixin

from eventsourcing_app import conf
from eventsourcing_app.core.records import START, Position, StoredEvent
from eventsourcing_app.core.store import EventStore
from eventsourcing_app.following import checkpoints
from eventsourcing_app.models import CheckpointChange, Event
from eventsourcing_app.projections import Batch, Projection

SHOWN_DIFFERENCES = 5
COUNTED_DIFFERENCES = 1000


@dataclass
class RebuildReport:
    """What a rebuild (or a verification) did."""

    projection: str
    events_read: int = 0
    position: Position = START
    differences: list[str] = field(default_factory=list)
    difference_count: int = 0


def rebuild(
    projection: Projection,
    store: EventStore,
    *,
    using: str = "default",
    batch_size: int | None = None,
    verify: bool = False,
    progress: Callable[[int], None] | None = None,
    by: str | None = None,
    reason: str = "",
) -> RebuildReport:
    """Replay the log into `projection`; with `verify`, compare and roll back instead.

    `by` (default: the OS user) and `reason` go into the record of the checkpoint's move.
    """
    return rebuild_all([projection], store, using=using, batch_size=batch_size, verify=verify,
                       progress=progress, by=by, reason=reason)[0]  # fmt: skip


def rebuild_all(
    projections: Sequence[Projection],
    store: EventStore,
    *,
    using: str = "default",
    batch_size: int | None = None,
    verify: bool = False,
    progress: Callable[[int], None] | None = None,
    by: str | None = None,
    reason: str = "",
) -> list[RebuildReport]:
    """Replay the log into every one of `projections` in one pass and one transaction (with
    `verify`, compare each and roll back instead); return a report per projection.

    Only the events of the types the projections handle are read. The pass reads what no open
    transaction can still precede (so the checkpoints of projections run by workers never skip
    an event), then the inline projections take the rest of the committed log as well: their
    tables are locked, so no append that would touch them commits meanwhile.
    """
    reports = [RebuildReport(projection.name) for projection in projections]
    batch_size = batch_size or conf.get("REBUILD_BATCH_SIZE")
    connection = connections[using]
    followed = [projection.name for projection in projections if not projection.inline]
    with transaction.atomic(using=using):
        # In the order appends write them (the registry's, by name), whatever order the
        # projections were named in: an append holding one table never waits on a lock held
        # by a rebuild that waits on that append.
        for projection in sorted(projections, key=lambda projection: projection.name):
            if projection.inline:
                _lock_tables(projection, connection)
        checkpoints.ensure(followed, using)
        before = {name: checkpoints.lock(name, using).position for name in followed}
        shadows = [_copy_tables(p, connection) if verify else {} for p in projections]
        for projection in projections:
            projection.reset(using)
        event_types = handled_types(projections)
        # Every event up to here is read by the pass below, handled or not: where the
        # checkpoints go when the last events are of types no projection handles.
        head = store.head()
        if event_types:
            held_back = store.read_log(START, holdback=True, event_types=event_types)
            _replay(held_back, projections, reports, using, batch_size, progress)
        for report in reports:
            report.position = max(report.position, head)
        if event_types:
            inline = [index for index, projection in enumerate(projections) if projection.inline]
            if inline and reports:
                after = reports[0].position  # where the pass stopped (every report has it)
                rest = store.read_log(after, holdback=False, event_types=event_types)
                _replay(rest, [projections[i] for i in inline], [reports[i] for i in inline],
                        using, batch_size, progress)  # fmt: skip
        if verify:
            for projection, shadow, report in zip(projections, shadows, reports, strict=True):
                _compare(projection, shadow, connection, report)
            transaction.set_rollback(True, using=using)
            return reports
        for projection, report in zip(projections, reports, strict=True):
            if projection.inline:
                continue
            checkpoints.advance(projection.name, report.position, using)
            checkpoints.record_change(
                projection.name,
                CheckpointChange.REBUILD,
                before[projection.name],
                report.position,
                by=by or os_user(),
                reason=reason,
                using=using,
            )
    return reports


def _replay(
    events: Iterable[StoredEvent],
    projections: Sequence[Projection],
    reports: Sequence[RebuildReport],
    using: str,
    batch_size: int,
    progress: Callable[[int], None] | None,
) -> None:
    """Apply `events`, a batch at a time, to each projection (a batch of rows of its own)."""
    for chunk in _chunks(events, batch_size):
        decoded: dict = {}  # each event decoded once, whichever projections handle it
        for projection, report in zip(projections, reports, strict=True):
            batch = Batch(using)
            batch.decoded = decoded
            projection.apply(chunk, batch)
            batch.flush()
            report.events_read += len(chunk)
            report.position = chunk[-1].position
        if progress is not None:
            progress(len(chunk))


def handled_types(projections: Sequence[Projection]) -> frozenset[str]:
    """The event types any of `projections` handles: what a rebuild of them reads."""
    return frozenset().union(*(projection.event_types for projection in projections))


def events_to_replay(projections: Sequence[Projection], using: str = "default") -> int:
    """How many events a rebuild of `projections` reads now: those of the types they handle
    (a count on the event-type index; events appended meanwhile come on top)."""
    event_types = handled_types(projections)
    if not event_types:
        return 0
    return Event.objects.using(using).filter(event_type__in=event_types).count()


def os_user() -> str:
    """Return the login name of whoever runs this process."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login variable and no passwd entry, as in some containers
        return f"uid {os.getuid()}"


def _chunks(events: Iterable[StoredEvent], size: int) -> Iterator[list[StoredEvent]]:
    iterator = iter(events)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _lock_tables(projection: Projection, connection) -> None:
    if connection.vendor == "postgresql" and projection.tables:
        tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in projection.tables)
        with connection.cursor() as cursor:
            # EXCLUSIVE lets readers read on while writers (inline appends) wait.
            cursor.execute(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")
    # On SQLite the transaction already holds the database's only write lock.


def _copy_tables(projection: Projection, connection) -> dict[str, str]:
    """Copy each read-model table into a temporary table; return table -> copy."""
    shadows = {}
    with connection.cursor() as cursor:
        for model in projection.tables:
            table = model._meta.db_table
            shadow = f"verify_{table}"
            cursor.execute(
                f"CREATE TEMPORARY TABLE {connection.ops.quote_name(shadow)} AS "
                f"SELECT * FROM {connection.ops.quote_name(table)}"
            )
            shadows[table] = shadow
    return shadows


def _compare(projection: Projection, shadows: dict[str, str], connection, report) -> None:
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model in projection.tables:
            table = model._meta.db_table
            fields = [
                f
                for f in model._meta.concrete_fields
                if f.name not in projection.volatile_fields
                and not isinstance(f, AutoFieldMixin)  # row ids a replay hands out anew
            ]
            listed = ", ".join(quote(f.column) for f in fields)
            for label, left, right in (
                ("the live model has", shadows[table], table),
                ("a replay gives", table, shadows[table]),
            ):
                cursor.execute(
                    f"SELECT {listed} FROM {quote(left)} EXCEPT SELECT {listed} FROM {quote(right)}"
                )
                rows = cursor.fetchmany(COUNTED_DIFFERENCES)
                report.difference_count += len(rows)
                for row in rows[: SHOWN_DIFFERENCES - len(report.differences)]:
                    shown = ", ".join(
                        f"{f.name}=<personal data>"
                        if f.name in projection.personal_fields
                        else f"{f.name}={_shown(f, v, connection)!r}"
                        for f, v in zip(fields, row, strict=True)
                    )
                    report.differences.append(f"{table}: {label} ({shown})")


def _shown(field, value, connection):
    """Return a raw column value as the ORM would (Decimal, UUID, aware datetime)."""
    column = field.get_col(field.model._meta.db_table)
    converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
    for converter in converters:
        value = converter(value, column, connection)
    return value
