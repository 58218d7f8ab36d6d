"""Projections: read models built from the log by per-event-type handlers, in batches.

The same handler code runs inline (inside the append transaction, through the
`events_appended` signal), in the catch-up worker and in `rebuild_projections`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, ClassVar

from django.db import connections, models

from eventsourcing_app.backends import statements
from eventsourcing_app.core.errors import HandlerFailed
from eventsourcing_app.core.mapper import EventMapper
from eventsourcing_app.core.records import Position, StoredEvent

Handler = Callable[[Any, "Projected", "Batch"], None]
_UNDECODED = object()
COPY_FROM_ROWS = 100  # new rows of one model in a batch from which they go in by COPY


def handles(event_type: str | type) -> Callable[[Handler], Handler]:
    """Mark a projection method as the handler of `event_type` (a type name or event class)."""
    name = event_type if isinstance(event_type, str) else event_type.type_name

    def mark(method: Handler) -> Handler:
        method.handles_event_type = name
        return method

    return mark


@dataclasses.dataclass(frozen=True, slots=True)
class Projected:
    """A stored event with its decoded payload (a domain event, or its data if unregistered)."""

    stored: StoredEvent
    payload: Any

    @property
    def event_type(self) -> str:
        return self.stored.event_type

    @property
    def aggregate_id(self) -> uuid.UUID:
        return self.stored.aggregate_id

    @property
    def version(self) -> int:
        return self.stored.version

    @property
    def position(self) -> Position:
        return self.stored.position

    @property
    def created_at(self) -> dt.datetime:
        return self.stored.created_at

    @property
    def metadata(self) -> dict[str, Any]:
        return self.stored.metadata


class Batch:
    """The read-model rows one batch touches: fetched in one query, written in bulk at the end.

    `get` answers from what `prefetch` loaded (or queries once per missing key), `put` upserts,
    `insert` appends new rows, `delete` removes; `flush` writes it all with a few queries.
    A few rows of a model (an inline append's) are read and written by statements prepared
    once a connection (`eventsourcing_app.backends.statements`), more through the ORM.
    """

    def __init__(self, using: str) -> None:
        self.using = using
        self.scratch: dict[str, Any] = {}  # a projection's working memory for this batch only
        # Payloads by (mapper identity, event id), shared by the projections of a rebuild.
        self.decoded: dict[tuple, Any] | None = None
        self._rows: dict[type[models.Model], dict[Any, models.Model | None]] = {}
        self._put: dict[type[models.Model], dict[Any, models.Model]] = {}
        self._inserted: dict[type[models.Model], list[models.Model]] = {}
        self._deleted: dict[type[models.Model], set[Any]] = {}

    def prefetch(self, model: type[models.Model], keys: Iterable[Any]) -> None:
        """Load the rows of `model` with these primary keys in one query."""
        rows = self._rows.setdefault(model, {})
        wanted = [key for key in set(keys) if key not in rows]
        if not wanted:
            return
        if len(wanted) <= statements.SMALL_BATCH:
            found = statements.rows_by_key(model, wanted, self.using)
        else:
            found = model.objects.using(self.using).in_bulk(wanted)
        for key in wanted:
            rows[key] = found.get(key)

    def get(self, model: type[models.Model], key: Any) -> models.Model | None:
        rows = self._rows.setdefault(model, {})
        if key not in rows:
            self.prefetch(model, [key])
        return rows[key]

    def put(self, row: models.Model) -> None:
        """Insert or update `row` at flush (its primary key must be set)."""
        model = type(row)
        self._rows.setdefault(model, {})[row.pk] = row
        self._put.setdefault(model, {})[row.pk] = row
        self._deleted.get(model, set()).discard(row.pk)

    def insert(self, row: models.Model) -> None:
        """Insert a new row at flush (for append-only read models; the key may be automatic)."""
        self._inserted.setdefault(type(row), []).append(row)

    def delete(self, model: type[models.Model], key: Any) -> None:
        self._rows.setdefault(model, {})[key] = None
        self._put.get(model, {}).pop(key, None)
        self._deleted.setdefault(model, set()).add(key)

    def flush(self) -> None:
        """Write everything: deletes, then upserts, then inserts, a query or two per model."""
        for model, keys in self._deleted.items():
            if keys:
                model.objects.using(self.using).filter(pk__in=keys).delete()
        for model, rows in self._put.items():
            if rows and len(rows) <= statements.SMALL_BATCH:
                statements.upsert(model, list(rows.values()), self.using)
            elif rows:
                pk = model._meta.pk
                fields = [f.name for f in model._meta.concrete_fields if f is not pk]
                model.objects.using(self.using).bulk_create(
                    list(rows.values()),
                    update_conflicts=bool(fields),
                    ignore_conflicts=not fields,
                    unique_fields=[pk.name] if fields else None,
                    update_fields=fields or None,
                )
        for model, rows in self._inserted.items():
            if rows:
                _insert(model, rows, self.using)
        self._put, self._inserted, self._deleted = {}, {}, {}


def _insert(model: type[models.Model], rows: list[models.Model], using: str) -> None:
    """Insert new rows: a few (an inline append's) with a statement prepared once
    (`statements.insert`), many with COPY on PostgreSQL (a fraction of `bulk_create`'s time,
    which builds an INSERT of arrays in Python; a rebuild's batches), else with `bulk_create`.
    Each value is what the ORM would save (`pre_save`, `get_db_prep_save`); an automatic
    primary key is left to the database and not read back."""
    connection = connections[using]
    if len(rows) <= statements.SMALL_BATCH:
        statements.insert(model, rows, using)
        return
    if connection.vendor != "postgresql" or len(rows) < COPY_FROM_ROWS:
        model.objects.using(using).bulk_create(rows)
        return
    fields = statements.new_row_fields(model)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    statement = f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN"
    plain = [_AS_GIVEN.get(type(field)) for field in fields]
    with (
        connection.wrap_database_errors,  # Django's IntegrityError and the like, as an INSERT's
        connection.cursor() as cursor,
        cursor.cursor.copy(statement) as copy,
    ):
        for row in rows:
            values = []
            for field, given in zip(fields, plain, strict=True):
                value = field.pre_save(row, True)
                if given is None or type(value) is not given:
                    value = field.get_db_prep_save(value, connection)
                elif (given is dt.datetime and value.tzinfo is None) or (
                    given is Decimal and not value.is_finite()
                ):
                    value = field.get_db_prep_save(value, connection)  # its rule, or its error
                values.append(value)
            copy.write_row(values)


# Django's own fields whose value of this exact type the ORM saves unchanged on PostgreSQL
# (checked by a test against `get_db_prep_save`): COPY takes it as it is, a third of the cost.
_AS_GIVEN: dict[type[models.Field], type] = {
    models.CharField: str,
    models.TextField: str,
    models.UUIDField: uuid.UUID,
    models.IntegerField: int,
    models.BigIntegerField: int,
    models.SmallIntegerField: int,
    models.PositiveIntegerField: int,
    models.PositiveBigIntegerField: int,
    models.PositiveSmallIntegerField: int,
    models.BooleanField: bool,
    models.DecimalField: Decimal,
    models.DateField: dt.date,
    models.DateTimeField: dt.datetime,
}


class Projection:
    """A read model: its name, the tables it owns, and one `@handles` method per event type.

    Set `inline = True` to update it inside the append transaction (read-your-writes);
    otherwise `run_projections` follows the log from its checkpoint. Override `prefetch` to
    load the rows a batch needs in one query, and `volatile_fields` to leave columns such as
    wall-clock times out of `rebuild_projections --verify`.
    """

    name: ClassVar[str]
    tables: ClassVar[tuple[type[models.Model], ...]] = ()
    inline: ClassVar[bool] = False
    volatile_fields: ClassVar[tuple[str, ...]] = ()
    # False for process managers (sagas): their handlers act, so a rebuild must not replay them.
    replayable: ClassVar[bool] = True
    # Columns that copy personal data: never printed (`rebuild_projections --verify` masks
    # them), and what `forget` must clear when the projection does not handle the erasure.
    personal_fields: ClassVar[frozenset[str]] = frozenset()
    handlers: ClassVar[dict[str, Handler]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers = dict(cls.handlers)
        for value in vars(cls).values():
            event_type = getattr(value, "handles_event_type", None)
            if event_type is not None:
                handlers[event_type] = value
        cls.handlers = handlers

    def __init__(self, mapper: EventMapper | None = None) -> None:
        self.mapper = mapper or EventMapper()

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(self.handlers)

    def prefetch(self, events: Sequence[Projected], batch: Batch) -> None:
        """Load in bulk the rows the batch's handlers will `get` (default: nothing)."""

    def apply(self, stored_events: Sequence[StoredEvent], batch: Batch) -> None:
        """Apply the events this projection handles, in order; flush is the caller's.

        `batch.decoded`, when set, is shared by the projections a rebuild replays together:
        each event is decoded once per kind of mapper, and the projections get the same
        payload (domain events are frozen; handlers must not change a payload).
        """
        decoded = batch.decoded
        mine = [stored for stored in stored_events if stored.event_type in self.handlers]
        if not mine:
            return
        keys = self.mapper.keys_for(mine)  # one look-up for the batch
        if decoded is None:
            handled = [Projected(stored, self.mapper.payload(stored, keys)) for stored in mine]
        else:
            identity, handled = self.mapper.identity, []
            for stored in mine:
                payload = decoded.get((identity, stored.id), _UNDECODED)
                if payload is _UNDECODED:
                    payload = decoded[identity, stored.id] = self.mapper.payload(stored, keys)
                handled.append(Projected(stored, payload))
        self.prefetch(handled, batch)
        for event in handled:
            try:
                self.handlers[event.event_type](self, event, batch)
            except Exception as exc:
                raise HandlerFailed(self.name, event.stored, exc) from exc

    def forget(self, aggregate_ids: Sequence[uuid.UUID], subject: str, using: str) -> None:
        """Re-project this read model's rows of `aggregate_ids`, whose data subject `subject`
        was just forgotten, so that none keeps their personal data (default: it keeps none).

        Runs inside the erasure's transaction; the events now read with the subject's
        personal fields erased, so a rebuild would give the same rows.
        """

    def reset(self, using: str) -> None:
        """Empty the read model (one DELETE per table; readers keep the old rows until commit)."""
        for model in reversed(self.tables):
            model.objects.using(using).all().delete()


class ProjectionRegistry:
    """The projections of the installed apps, by name."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Projection]] = {}
        self._instances: dict[str, Projection] = {}

    def register(self, cls: type[Projection]) -> type[Projection]:
        existing = self._classes.get(cls.name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"projection {cls.name!r} is already {existing.__qualname__}")
        self._classes[cls.name] = cls
        self._instances.pop(cls.name, None)
        return cls

    def names(self) -> list[str]:
        return sorted(self._classes)

    def get(self, name: str) -> Projection:
        if name not in self._instances:
            self._instances[name] = self._classes[name]()
        return self._instances[name]

    def select(self, names: Sequence[str] = ()) -> list[Projection]:
        """Return the named projections (all when none are named); raise on unknown names."""
        unknown = sorted(set(names) - self._classes.keys())
        if unknown:
            raise LookupError(
                f"unknown projection {', '.join(unknown)}; known: {', '.join(self.names())}"
            )
        return [self.get(name) for name in (names or self.names())]

    def inline(self) -> list[Projection]:
        return [p for p in self.select() if p.inline]


registry = ProjectionRegistry()


def projection(cls: type[Projection]) -> type[Projection]:
    """Register a projection class (used as a decorator in an app's `projections.py`)."""
    return registry.register(cls)


def apply_inline(sender, events: Sequence[StoredEvent], using: str, **kwargs) -> None:
    """Receive `events_appended`: update inline read models in the append's transaction."""
    for inline_projection in registry.inline():
        batch = Batch(using)
        inline_projection.apply(events, batch)
        batch.flush()
