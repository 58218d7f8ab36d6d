"""System checks: broken upcaster chains, stored events this code cannot read, bad settings.

They run with every `manage.py check` (and at server start), so a deployment that cannot read
its own log fails before it serves a request, not at the first unlucky load.
"""

from __future__ import annotations

from django.core import checks
from django.db import DatabaseError, connections

from eventsourcing_app import conf
from eventsourcing_app.domain.events import EventRegistry, registry
from eventsourcing_app.domain.upcasting import Upcasters, upcasters
from eventsourcing_app.models import Event

# One index probe per event type and bound, on the (event_type, schema_version) index.
STORED_VERSIONS = """
WITH RECURSIVE types(event_type) AS (
    SELECT min(event_type) FROM {table}
    UNION ALL
    SELECT (SELECT min(e.event_type) FROM {table} e WHERE e.event_type > t.event_type)
    FROM types t WHERE t.event_type IS NOT NULL
)
SELECT t.event_type,
       (SELECT min(e.schema_version) FROM {table} e WHERE e.event_type = t.event_type),
       (SELECT max(e.schema_version) FROM {table} e WHERE e.event_type = t.event_type)
FROM types t WHERE t.event_type IS NOT NULL
"""


def upcaster_chain_problems(
    events: EventRegistry = registry, steps: Upcasters = upcasters
) -> list[str]:
    """Describe every gap in the registered upcaster chains."""
    return steps.problems((name, events.event_class(name).schema_version) for name in events)


def stored_version_problems(
    stored: list[tuple[str, int, int]],
    events: EventRegistry = registry,
    steps: Upcasters = upcasters,
) -> list[str]:
    """Describe stored (event type, oldest, newest schema version) this code cannot read."""
    found = []
    for event_type, oldest, newest in stored:
        if event_type not in events:
            continue  # may belong to an app that is not installed here; loads say so clearly
        current = events.event_class(event_type).schema_version
        if newest > current:
            found.append(
                f"stored {event_type} events are at schema v{newest}, newer than the "
                f"v{current} this code knows (was newer code deployed, then rolled back?)"
            )
        missing = [v for v in range(oldest, current) if v not in steps.from_versions(event_type)]
        if missing:
            found.append(
                f"stored {event_type} events at v{oldest} cannot be upcast to v{current}: "
                f"no upcaster from v{missing[0]}"
            )
    return found


def stored_versions(using: str) -> list[tuple[str, int, int]] | None:
    """Return (event type, oldest, newest schema version) stored, or None if unreadable."""
    connection = connections[using]
    table = Event._meta.db_table
    try:
        if table not in connection.introspection.table_names():
            return None
        with connection.cursor() as cursor:
            cursor.execute(STORED_VERSIONS.format(table=table))
            return cursor.fetchall()
    except DatabaseError:
        return None


@checks.register("eventsourcing")
def check_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Refuse keys of `EVENTSOURCING` the app does not know: a typo would pass silently."""
    unknown = conf.unknown_keys()
    if not unknown:
        return []
    return [
        checks.Error(
            f"EVENTSOURCING has the unknown key {', '.join(map(repr, unknown))}",
            hint=f"the known keys are {', '.join(sorted(conf.DEFAULTS))}",
            id="eventsourcing.E003",
        )
    ]


@checks.register("eventsourcing")
def check_ledger_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Check when digests are sealed and that the signing key, when one is set, loads."""
    from eventsourcing_app.ledger import digests, keys

    found: list[checks.CheckMessage] = []
    every = conf.get("LEDGER_DIGEST_EVERY")
    if not (
        isinstance(every, dict)
        and set(every) <= {"events", "seconds"}
        and all(isinstance(v, int | float) and v >= 0 for v in every.values())
    ):
        found.append(
            checks.Error(
                f"EVENTSOURCING['LEDGER_DIGEST_EVERY'] is {every!r}",
                hint='give {"events": N, "seconds": S}, either or both, as numbers >= 0',
                id="eventsourcing.E004",
            )
        )
    if not keys.configured():
        found.append(
            checks.Warning(
                "no ledger signing key: the ledger grows but seals no digest",
                hint="set LEDGER_SIGNING_KEY_FILE (a PEM file) or LEDGER_SIGNING_KEY (PEM or "
                "base64) in the environment or in EVENTSOURCING; `manage.py ledger_keygen FILE` "
                "makes a key",
                id="eventsourcing.W001",
            )
        )
    else:
        try:
            keys.signing_key()
        except digests.DigestError as exc:
            found.append(checks.Error(str(exc), id="eventsourcing.E005"))
    return found


@checks.register("eventsourcing")
def check_personal_data_key(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Check that the master key loads when event types declare personal data."""
    from eventsourcing_app.core.personal import PersonalDataError, declarations
    from eventsourcing_app.privacy import masterkey

    if not declarations.types():
        return []
    if not masterkey.configured():
        return [
            checks.Warning(
                f"no master key for personal data: appending {', '.join(declarations.types())} "
                "events is refused, and their personal fields cannot be read",
                hint="set PERSONAL_DATA_KEY_FILE (a file of 32 random bytes in base64) or "
                "PERSONAL_DATA_KEY in the environment or in EVENTSOURCING; `manage.py "
                "personal_data_keygen FILE` makes one",
                id="eventsourcing.W002",
            )
        ]
    try:
        masterkey.readable()
    except PersonalDataError as exc:
        return [checks.Error(str(exc), id="eventsourcing.E006")]
    return []


@checks.register("eventsourcing")
def check_event_schemas(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    errors = [
        checks.Error(problem, id="eventsourcing.E001") for problem in upcaster_chain_problems()
    ]
    for using in connections:
        stored = stored_versions(using)
        if stored is None:
            continue
        errors += [
            checks.Error(f"{problem} [database {using!r}]", id="eventsourcing.E002")
            for problem in stored_version_problems(stored)
        ]
    return errors
