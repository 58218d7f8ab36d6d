"""The `events` and `snapshots` tables: the storage contract other tools and operators read."""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.utils import timezone

from eventsourcing_app.core.errors import AppendOnlyError
from eventsourcing_app.core.records import Position


class CurrentTransactionId(models.Func):
    """The writing transaction's id on PostgreSQL; 0 on SQLite, whose writers are serial."""

    output_field = models.BigIntegerField()

    def as_sql(self, compiler, connection, **extra_context):
        return "0", []

    def as_postgresql(self, compiler, connection, **extra_context):
        return "(pg_current_xact_id()::text)::bigint", []


class CorrelationId(models.Func):
    """The metadata's correlation id as text: the expression the correlation index is built on.

    Written out per database so that index and queries compile to the very same expression
    (Django's JSON key lookups do not on SQLite).
    """

    output_field = models.CharField()

    def __init__(self) -> None:
        super().__init__(models.F("metadata"))

    def as_sql(self, compiler, connection, **extra_context):
        template = "JSON_EXTRACT(%(expressions)s, '$.correlation_id')"
        return super().as_sql(compiler, connection, template=template, **extra_context)

    def as_postgresql(self, compiler, connection, **extra_context):
        template = "(%(expressions)s ->> 'correlation_id')"
        return super().as_sql(compiler, connection, template=template, **extra_context)


class Username(models.Func):
    """The metadata's username as text: the expression the user index is built on.

    Written out per database, as `CorrelationId` is, so that the index and the user filter
    compile to the very same expression.
    """

    output_field = models.CharField()

    def __init__(self) -> None:
        super().__init__(models.F("metadata"))

    def as_sql(self, compiler, connection, **extra_context):
        template = "JSON_EXTRACT(%(expressions)s, '$.username')"
        return super().as_sql(compiler, connection, template=template, **extra_context)

    def as_postgresql(self, compiler, connection, **extra_context):
        template = "(%(expressions)s ->> 'username')"
        return super().as_sql(compiler, connection, template=template, **extra_context)


class EventQuerySet(models.QuerySet):
    """Querysets over the log that refuse bulk changes."""

    def for_correlation(self, value: str) -> EventQuerySet:
        """Return the events of one correlation (a request, a job, a saga), using its index."""
        return self.alias(correlation=CorrelationId()).filter(correlation=value)

    def update(self, **kwargs):
        raise AppendOnlyError("events are append-only: a queryset cannot update them")

    def delete(self):
        raise AppendOnlyError("events are append-only: a queryset cannot delete them")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("events are append-only: a queryset cannot update them")

    def bulk_create(self, objs, *args, **kwargs):
        raise AppendOnlyError(
            "append events through EventStore.append(), which chains their hashes"
        )


class Event(models.Model):
    """One stored event. Rows are written by `EventStore.append()` only and never change."""

    id = models.BigAutoField(primary_key=True)
    transaction_id = models.BigIntegerField(db_default=CurrentTransactionId(), editable=False)
    aggregate_id = models.UUIDField()
    aggregate_type = models.CharField(max_length=100)
    event_type = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    schema_version = models.PositiveSmallIntegerField(default=1)
    event_data = models.JSONField()
    metadata = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    hash = models.CharField(max_length=64)
    previous_hash = models.CharField(max_length=64)

    objects = EventQuerySet.as_manager()

    class Meta:
        db_table = "events"
        ordering = ["transaction_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["aggregate_id", "version"], name="events_aggregate_version_uniq"
            ),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="events_version_gte_1"),
        ]
        indexes = [
            models.Index(fields=["transaction_id", "id"], name="events_position_idx"),
            models.Index(
                fields=["event_type", "transaction_id", "id"],
                name="events_type_position_idx",
            ),
            models.Index(CorrelationId(), name="events_correlation_idx"),
            models.Index(Username(), name="events_username_idx"),
            models.Index(fields=["event_type", "schema_version"], name="events_type_schema_idx"),
            models.Index(fields=["created_at"], name="events_created_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} v{self.version} of {self.aggregate_id}"

    def save(self, *args, **kwargs):
        if self._state.adding:
            raise AppendOnlyError(
                "append events through EventStore.append(), which checks versions and chains hashes"
            )
        raise AppendOnlyError(
            f"event {self.pk} is stored and cannot change: events are append-only"
        )

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"event {self.pk} cannot be deleted: events are append-only")

    @property
    def position(self) -> Position:
        """The event's place in the global log, in the order `read_log` gives."""
        return Position(self.transaction_id, self.id)


class Snapshot(models.Model):
    """An aggregate's state at a version: a cache that makes loads fast and changes no answer."""

    aggregate_id = models.UUIDField()
    aggregate_type = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    state = models.JSONField()
    schema_version = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "snapshots"
        constraints = [
            models.UniqueConstraint(
                fields=["aggregate_id", "version"],
                name="snapshots_aggregate_version_uniq",
            ),
        ]

    def __str__(self) -> str:
        return f"snapshot of {self.aggregate_type} {self.aggregate_id} at v{self.version}"


class LedgerQuerySet(models.QuerySet):
    """Querysets over the ledger that refuse bulk changes, like the events they seal."""

    def update(self, **kwargs):
        raise AppendOnlyError(f"{self.model._meta.db_table} is append-only")

    def delete(self):
        raise AppendOnlyError(f"{self.model._meta.db_table} is append-only")


class LedgerRow(models.Model):
    """A row of the ledger: written by the sealer only, never changed."""

    objects = LedgerQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        raise AppendOnlyError(f"{self._meta.db_table} rows are written by the ledger sealer only")

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{self._meta.db_table} is append-only")


class LedgerLeaf(LedgerRow):
    """Leaf `leaf_index` of the Merkle tree over the log: one event, in log order."""

    leaf_index = models.BigIntegerField(primary_key=True)
    event_id = models.BigIntegerField(unique=True)
    transaction_id = models.BigIntegerField()
    # The event's stream and version, so that a check can name what went missing.
    aggregate_id = models.UUIDField()
    version = models.PositiveIntegerField()
    hash = models.BinaryField(max_length=32)  # SHA-256(0x00 || the event's hash as ASCII)

    class Meta:
        db_table = "ledger_leaves"
        indexes = [
            models.Index(fields=["aggregate_id", "version"], name="ledger_leaves_stream_idx")
        ]

    def __str__(self) -> str:
        return f"leaf {self.leaf_index}: event {self.event_id}"

    @property
    def position(self) -> Position:
        return Position(self.transaction_id, self.event_id)


class LedgerNode(LedgerRow):
    """The hash of an aligned perfect subtree: leaves [index * 2**level, (index + 1) * 2**level)."""

    pk = models.CompositePrimaryKey("level", "node_index")
    level = models.SmallIntegerField()
    node_index = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)

    class Meta:
        db_table = "ledger_nodes"

    def __str__(self) -> str:
        return f"node {self.node_index} of level {self.level}"


class LedgerDigest(LedgerRow):
    """A signed digest of the tree as it stood: what auditors keep outside the database."""

    id = models.BigAutoField(primary_key=True)
    tree_size = models.BigIntegerField()
    root_hash = models.CharField(max_length=64)
    last_position = models.CharField(max_length=41)
    algorithm = models.CharField(max_length=30)
    sealed_at = models.CharField(max_length=40)  # the very text that was signed
    key_id = models.CharField(max_length=64)
    signature = models.CharField(max_length=100)

    class Meta:
        db_table = "ledger_digests"
        indexes = [models.Index(fields=["tree_size"], name="ledger_digests_size_idx")]

    def __str__(self) -> str:
        return f"digest of {self.tree_size} events sealed at {self.sealed_at}"


class ProjectionCheckpoint(models.Model):
    """Where an async projection has got to in the log, who runs it, and how it fares."""

    OK = "ok"
    FAILED = "failed"
    REBUILDING = "rebuilding"
    STATUSES = [(OK, "ok"), (FAILED, "failed"), (REBUILDING, "rebuilding")]

    name = models.CharField(max_length=100, primary_key=True)
    position_transaction = models.BigIntegerField(default=0)
    position_id = models.BigIntegerField(default=0)
    status = models.CharField(max_length=20, choices=STATUSES, default=OK)
    last_error = models.TextField(blank=True, default="")
    failed_event_id = models.BigIntegerField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    owner = models.CharField(max_length=200, blank=True, default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "projection_checkpoints"

    def __str__(self) -> str:
        return f"{self.name} at {self.position} ({self.status})"

    @property
    def position(self) -> Position:
        return Position(self.position_transaction, self.position_id)


class CheckpointChangeQuerySet(models.QuerySet):
    """Querysets over the change record that refuse bulk changes."""

    def update(self, **kwargs):
        raise AppendOnlyError("checkpoint changes are append-only: a queryset cannot update them")

    def delete(self):
        raise AppendOnlyError("checkpoint changes are append-only: a queryset cannot delete them")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError("checkpoint changes are append-only: a queryset cannot update them")


class CheckpointChange(models.Model):
    """One operator change to a projection checkpoint (a rebuild, say): who, when, from, to, why.

    Workers advancing a checkpoint batch by batch are not recorded; only moves made from outside
    the normal flow are, so that a read model's history can be explained.
    """

    REBUILD = "rebuild"
    KINDS = [(REBUILD, "rebuild")]

    id = models.BigAutoField(primary_key=True)
    checkpoint = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=KINDS)
    from_transaction = models.BigIntegerField()
    from_id = models.BigIntegerField()
    to_transaction = models.BigIntegerField()
    to_id = models.BigIntegerField()
    changed_by = models.CharField(max_length=200)
    reason = models.TextField(blank=True, default="")
    changed_at = models.DateTimeField(default=timezone.now)

    objects = CheckpointChangeQuerySet.as_manager()

    class Meta:
        db_table = "checkpoint_changes"
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["checkpoint", "changed_at"], name="checkpoint_changes_name_idx")
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.checkpoint}: {self.from_position} -> {self.to_position}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(
                f"checkpoint change {self.pk} is recorded and cannot change: the record is "
                "append-only"
            )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(
            f"checkpoint change {self.pk} cannot be deleted: the record is append-only"
        )

    @property
    def from_position(self) -> Position:
        return Position(self.from_transaction, self.from_id)

    @property
    def to_position(self) -> Position:
        return Position(self.to_transaction, self.to_id)


class EvidenceExport(models.Model):
    """One completed evidence export: who exported which rows of the log, when, and the file's
    SHA-256, so that a downloaded file and its manifest provably match. Append-only.

    Recorded when the streamed file ends (its count and hash are known only then), under the
    `export_id` the download named in its file name before the first byte.
    """

    CSV = "csv"
    JSONL = "jsonl"
    FORMATS = [(CSV, "CSV"), (JSONL, "JSON Lines")]

    id = models.BigAutoField(primary_key=True)
    export_id = models.UUIDField(unique=True)
    exported_by = models.CharField(max_length=200)
    format = models.CharField(max_length=10, choices=FORMATS)
    query_string = models.TextField(blank=True, default="")  # the event list's filters, as sent
    filters = models.JSONField(default=dict)  # the same, parsed: {parameter: [values]}
    # The log's head when the export began: rows appended later are never in the file.
    as_of_transaction = models.BigIntegerField()
    as_of_id = models.BigIntegerField()
    # The last exported row, in log order (0-0 when the filters selected none).
    last_transaction = models.BigIntegerField(default=0)
    last_id = models.BigIntegerField(default=0)
    row_count = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField(default=timezone.now)

    objects = LedgerQuerySet.as_manager()

    class Meta:
        db_table = "evidence_exports"
        ordering = ["-completed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.format} export {self.export_id} of {self.row_count} events"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(f"evidence export {self.pk} is recorded and cannot change")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"evidence export {self.pk} cannot be deleted: append-only")

    @property
    def as_of(self) -> Position:
        return Position(self.as_of_transaction, self.as_of_id)

    @property
    def last_position(self) -> Position:
        return Position(self.last_transaction, self.last_id)


# A running rebuild beats when it starts and after every batch; a run silent for longer than
# this has lost its process (a restart, a crash) and no longer holds its projection.
REBUILD_STALE_AFTER = dt.timedelta(seconds=120)
ABANDONED = "abandoned"  # how the error of a run closed for its silence begins


class RebuildRunQuerySet(models.QuerySet):
    """Querysets over the rebuild runs."""

    def abandoned(self, now: dt.datetime | None = None) -> RebuildRunQuerySet:
        """Return the unfinished runs silent past `REBUILD_STALE_AFTER`, as
        `RebuildRun.abandoned` tells them."""
        cutoff = (now or timezone.now()) - REBUILD_STALE_AFTER
        silent = models.Q(heartbeat_at__lt=cutoff) | models.Q(
            heartbeat_at__isnull=True, started_at__lt=cutoff
        )
        return self.filter(silent, finished_at__isnull=True)


class RebuildRun(models.Model):
    """One rebuild started from the admin, run in the background: who started it, why, and how
    far it has got. Updated as it runs (unlike the append-only records); at most one unfinished
    run per projection, which the database itself enforces.

    The thread running it beats (`heartbeat_at`) as it goes. A run whose process died mid-way
    stops beating and, once silent past `REBUILD_STALE_AFTER`, is abandoned: it no longer holds
    its projection, and the next rebuild started for it closes it first.
    """

    id = models.BigAutoField(primary_key=True)
    projection = models.CharField(max_length=100)
    started_by = models.CharField(max_length=200)
    reason = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(default=timezone.now)
    # The log's length when the replay began (None: not begun yet), and the events read so far.
    events_total = models.BigIntegerField(null=True, blank=True)
    events_read = models.BigIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # None: no beat yet
    finished_at = models.DateTimeField(null=True, blank=True)  # None: still running
    error = models.TextField(blank=True, default="")  # set when the rebuild failed

    objects = RebuildRunQuerySet.as_manager()

    class Meta:
        db_table = "rebuild_runs"
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["projection"],
                condition=models.Q(finished_at__isnull=True),
                name="rebuild_runs_one_running",
            )
        ]

    def __str__(self) -> str:
        return f"rebuild {self.pk} of {self.projection} ({self.state})"

    @property
    def last_beat(self) -> dt.datetime:
        """The last sign of life of the thread running it: its heartbeat, else its start."""
        return self.heartbeat_at or self.started_at

    @property
    def abandoned(self) -> bool:
        """Unfinished and silent past `REBUILD_STALE_AFTER`, or closed for being so."""
        if self.finished_at is not None:
            return self.error.startswith(f"{ABANDONED}:")
        return self.last_beat < timezone.now() - REBUILD_STALE_AFTER

    def abandonment(self) -> str:
        """Return the error an abandoned run is closed with."""
        since = self.last_beat.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{ABANDONED}: no heartbeat since {since}; the process running it stopped"

    @property
    def state(self) -> str:
        if self.abandoned:
            return "abandoned"
        if self.finished_at is None:
            return "running" if self.events_total is not None else "waiting"
        return "failed" if self.error else "finished"


class PersonalDataKey(models.Model):
    """A data key for personal fields, wrapped by the master key, and whose data it seals.

    A subject may hold several keys: events name the key, not the subject, so a subject can
    take over another's keys (a customer taking over the accounts it owns) by changing
    `subject` here, with no event touched. Forgetting the subject destroys every key of theirs
    (`wrapped_key` None) and records who did so, when and why; the events keep their sealed
    fields, which nothing can open any more. Not append-only: erasure changes it.
    """

    key_id = models.UUIDField(primary_key=True)
    subject = models.CharField(max_length=200, db_index=True)
    wrapped_key = models.BinaryField(null=True)  # None: destroyed
    master_key_id = models.CharField(max_length=16)  # which master key wrapped it
    created_at = models.DateTimeField(default=timezone.now)
    forgotten_at = models.DateTimeField(null=True, blank=True)
    forgotten_by = models.CharField(max_length=200, blank=True, default="")
    reason = models.TextField(blank=True, default="")

    class Meta:
        db_table = "personal_data_keys"
        ordering = ["-created_at"]
        verbose_name = "data subject"
        permissions = [("forget_subject", "Can forget a data subject (erase their personal data)")]

    def __str__(self) -> str:
        return f"subject {self.subject}" + (" (forgotten)" if self.forgotten else "")

    @property
    def forgotten(self) -> bool:
        return self.forgotten_at is not None
