"""What the audit pages show: an aggregate's timeline with the state after each event and the
diff from the one before, its personal data opened or the record of its erasure, state at a
point in time, comparisons, and correlation trails."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from eventsourcing_app.audit import paging
from eventsourcing_app.audit.paging import page_report
from eventsourcing_app.core.errors import DomainError
from eventsourcing_app.core.mapper import EventMapper
from eventsourcing_app.core.records import StoredEvent
from eventsourcing_app.core.store import EventStore
from eventsourcing_app.core.verification import ChainBreak, VerificationReport, verify_chains
from eventsourcing_app.domain.aggregate import Aggregate
from eventsourcing_app.ledger.digests import DigestError
from eventsourcing_app.ledger.integrity import stream_integrity
from eventsourcing_app.ledger.proofs import LedgerEntry, ledger_entry
from eventsourcing_app.ledger.tree import Leaf, LedgerDamaged, LedgerTree
from eventsourcing_app.privacy.disclosure import Disclosure, PersonalKeys

MAX_VERSION = 2**31 - 1  # the version column's range on every database
# What a damaged ledger or an altered row can raise while a page reads them: shown, never a 500.
UNREADABLE = (LedgerDamaged, DigestError, ValueError, TypeError, LookupError)
# What replaying an altered row can raise: the card names it instead of failing the page.
REPLAY_ERRORS = (DomainError, LookupError, TypeError, ValueError, AttributeError, ArithmeticError)


@dataclass
class Change:
    name: str
    before: Any
    after: Any


@dataclass
class TimelineEntry:
    """One event with who/when/why, its data as stored and upcast, and the state it left."""

    event: StoredEvent
    upcast_data: dict[str, Any] | None
    state: dict[str, Any]
    changes: list[Change] = field(default_factory=list)
    error: str = ""
    breaks: list[ChainBreak] = field(default_factory=list)
    leaf: Leaf | None = None
    personal: Disclosure | None = None

    @property
    def upcast(self) -> bool:
        return self.upcast_data is not None and self.upcast_data != self.event.data

    @property
    def who(self) -> str:
        return who(self.event.metadata)

    @property
    def why(self) -> str:
        return why(self.event.metadata)


def who(metadata: Any) -> str:
    """Who appended an event, as a person reads it: the username recorded then and the stable
    id ("teller (id 1)"), the id alone for events recorded before usernames were, or ""."""
    metadata = metadata if isinstance(metadata, dict) else {}
    user_id, username = metadata.get("user_id"), metadata.get("username")
    if username and user_id is not None:
        return f"{username} (id {user_id})"
    return str(username or user_id or "")


def why(metadata: Any) -> str:
    """The reason the event's command was given, or ""."""
    reason = metadata.get("reason") if isinstance(metadata, dict) else None
    return reason if isinstance(reason, str) else ""


def state_of(aggregate: Aggregate) -> dict[str, Any]:
    """The aggregate's public state as plain values (for display and diffs)."""
    return {
        name: _plain(value)
        for name, value in vars(aggregate).items()
        if not name.startswith("_") and name not in ("id", "version")
    }


def _plain(value: Any) -> Any:
    """A value as a person reads it: money and ids as text, collections item by item."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return repr(value)


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """Return the fields whose value changed, in the order of `after`."""
    return [
        Change(name, before.get(name), value)
        for name, value in after.items()
        if before.get(name) != value
    ] + [Change(name, value, None) for name, value in before.items() if name not in after]


def forget_replayed_states(using: str, aggregate_id: uuid.UUID, personal: PersonalKeys) -> None:
    """Drop the stream's states that this process replayed before its data was erased: they
    hold the opened values (once per erasure; states replayed after hold the erased ones)."""
    for key_id in personal.forgotten:
        _drop_replayed_states(using, aggregate_id, key_id)


@functools.lru_cache(maxsize=10_000)  # remembers which erasures were dropped already
def _drop_replayed_states(using: str, aggregate_id: uuid.UUID, key_id: str) -> None:
    paging.CACHE.drop((using, aggregate_id))


def replayer(mapper: EventMapper, personal: PersonalKeys | None = None):
    """Return `apply(aggregate, stored)`: apply one stored event, return "" or why it failed.

    `personal` gives the keys to open personal fields with (else each event asks the key ring).
    """

    def apply(aggregate: Aggregate, stored: StoredEvent) -> str:
        try:
            keys = personal.keys_of(stored) if personal is not None else None
            aggregate.apply(mapper.to_domain(stored, keys))
        except REPLAY_ERRORS as exc:  # an altered row may hold anything
            return str(exc) or type(exc).__name__
        return ""

    return apply


def entries_of(
    events: list[StoredEvent],
    aggregate: Aggregate | None,
    mapper: EventMapper | None = None,
    personal: PersonalKeys | None = None,
) -> list[TimelineEntry]:
    """Return the cards of `events`, applied in turn to `aggregate` (replayed up to the first
    of them; None when the stream has no aggregate class here), their personal fields opened
    with `personal` (the page's keys, `personal_keys`)."""
    mapper = mapper or EventMapper()
    apply = replayer(mapper, personal)
    entries: list[TimelineEntry] = []
    previous: dict[str, Any] = state_of(aggregate) if aggregate and aggregate.version else {}
    for stored in events:
        upcast_data, error, state = None, "", previous
        if stored.event_type in mapper.events:
            try:
                target = mapper.events.event_class(stored.event_type).schema_version
                upcast_data = mapper.upcasters.upcast(
                    stored.event_type, stored.schema_version, stored.data, target
                )
            except REPLAY_ERRORS as exc:
                error = str(exc) or type(exc).__name__
            if aggregate is not None and not error:
                error = apply(aggregate, stored)
                state = state_of(aggregate) if not error else previous
        entry = TimelineEntry(stored, upcast_data, state, diff(previous, state), error)
        if personal is not None:
            entry.personal = personal.disclose(stored.event_type, stored.data)
        entries.append(entry)
        previous = state
    return entries


@dataclass
class Integrity:
    """What `stream_integrity` found for one stream, ready for a page: the chain and the ledger.

    `problem` is set when the ledger or a row of the stream could not be read; the stream
    then counts as unverified.
    """

    report: VerificationReport
    sealed: dict[int, Leaf] = field(default_factory=dict)
    problem: str = ""
    # "stream": the whole stream was checked; "page": only the versions `first`..`last`.
    scope: str = "stream"
    first: int = 0
    last: int = 0

    @property
    def intact(self) -> bool:
        return self.report.intact and not self.problem

    @property
    def breaks(self) -> list[ChainBreak]:
        return self.report.breaks

    @property
    def break_count(self) -> int:
        return self.report.break_count

    @property
    def more_breaks(self) -> int:
        """How many breaks were counted beyond those the report lists."""
        return self.report.break_count - len(self.report.breaks)

    @property
    def events(self) -> int:
        return self.report.events_checked

    def breaks_of(self, event_id: int) -> list[ChainBreak]:
        return [chain_break for chain_break in self.breaks if chain_break.event_id == event_id]


def integrity(store: EventStore, aggregate_id: uuid.UUID) -> Integrity:
    """Check one stream's chain and its sealed leaves, once for the page (reads in batches)."""
    using = getattr(store.recorder, "using", "default")
    try:
        report = stream_integrity(store.recorder, aggregate_id, using)
        sealed = LedgerTree(using).leaves_of_stream(aggregate_id)
    except UNREADABLE as exc:
        try:
            chains = verify_chains(store.recorder, aggregate_id=aggregate_id)
        except UNREADABLE as again:  # a row the recorder cannot read or the check cannot hash
            return Integrity(VerificationReport(), problem=unreadable(again))
        return Integrity(chains, problem=f"the ledger could not be read: {exc}")
    return Integrity(report, sealed)


def page_integrity(aggregate_id, page, predecessor, events, using: str = "default") -> Integrity:
    """Check what one page of a long stream shows (see `paging.page_report`)."""
    try:
        report, sealed = page_report(aggregate_id, page, predecessor, events, using)
    except UNREADABLE as exc:
        return Integrity(VerificationReport(), problem=f"the ledger could not be read: {exc}")
    return Integrity(report, sealed, scope="page", first=page.first, last=page.last)


def unreadable(exc: Exception) -> str:
    return (
        f"the stream cannot be read or verified ({type(exc).__name__}: {exc}): "
        "a row may have been altered behind the triggers"
    )


def mark(entries: list[TimelineEntry], checked: Integrity) -> None:
    """Put each break on the card of its event, and each card's sealed leaf beside it."""
    for entry in entries:
        entry.breaks = checked.breaks_of(entry.event.id)
        entry.leaf = checked.sealed.get(entry.event.version)


def entry_in_ledger(event_id: int, event_hash: str, using: str = "default") -> LedgerEntry:
    """Return the event's ledger entry, checked; a ledger that cannot be read is an answer."""
    try:
        return ledger_entry(event_id, event_hash, using)
    except UNREADABLE as exc:
        return LedgerEntry(None, None, False, f"the ledger could not be read: {exc}")


def parse_point(value: str | None) -> int | dt.datetime | None:
    """Parse a point in time from a form: a version number or an ISO-8601 date-time."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        version = int(value)
        if version > MAX_VERSION:
            raise ValueError(f"no stream reaches version {value}")
        return version
    moment = dt.datetime.fromisoformat(value)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00-05:00 is beyond the year 9999 in UTC
        raise ValueError(f"{value} is out of range") from None
