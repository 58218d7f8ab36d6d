"""Long timelines a page at a time: which versions a page holds, the state before it, and the
checks of what it shows.

A page holds `PAGE_SIZE` versions, aligned (page 1 is versions 1-100). The state before a page
is replayed from events, never from a snapshot (a snapshot is a cache no hash covers): from the
nearest page boundary this process has replayed before, whose event hash must still be the one
stored, or else from version 1. So the first visit deep into a long stream replays it once and
later pages continue from a boundary.

Streams up to `WHOLE_CHECK_UP_TO` events are verified whole on every page, as short ones always
were. A longer stream's page verifies what it shows: each event's hash and version, its link to
the event before it (the one before the page included) and its sealed leaf; the whole-stream
check is a link (up to `CHECK_LINK_UP_TO` events) or `manage.py verify_events --aggregate`.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass

from django.db.models import Count, Max

from eventsourcing_app.core.records import GENESIS_HASH, StoredEvent
from eventsourcing_app.core.store import EventStore
from eventsourcing_app.core.verification import VerificationReport, check_event
from eventsourcing_app.domain.aggregate import Aggregate
from eventsourcing_app.ledger.integrity import MissingEvent, compare_with_leaf
from eventsourcing_app.ledger.tree import LedgerTree
from eventsourcing_app.models import Event

PAGE_SIZE = 100
WHOLE_CHECK_UP_TO = 1_000
CHECK_LINK_UP_TO = 20_000
# Page-boundary states kept per process, over all streams (least recently used go first).
CACHED_STATES = 20_000


class Pager:
    """First, previous, next and last links of a numbered page (`_pager.html` reads them)."""

    number: int
    pages: int

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number < self.pages else None


@dataclass(frozen=True)
class TrailPage(Pager):
    """A correlation trail's page."""

    number: int
    pages: int


@dataclass(frozen=True)
class Page(Pager):
    """Where one page sits in its stream."""

    number: int
    count: int  # the stream's rows, counted
    head: int  # its highest version

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.head / PAGE_SIZE))

    @property
    def first(self) -> int:
        return (self.number - 1) * PAGE_SIZE + 1

    @property
    def last(self) -> int:
        return min(self.number * PAGE_SIZE, self.head)

    @property
    def whole_check(self) -> bool:
        """Whether each page checks the whole stream (short streams) or only itself."""
        return self.count <= WHOLE_CHECK_UP_TO

    @property
    def check_link(self) -> bool:
        """Whether the page offers the whole-stream check as a link (else as the command)."""
        return self.count <= CHECK_LINK_UP_TO


def extent(aggregate_id: uuid.UUID, using: str = "default") -> tuple[int, int]:
    """Return the stream's row count and its highest version (0, 0 when it has none)."""
    found = (
        Event.objects.using(using)
        .filter(aggregate_id=aggregate_id)
        .aggregate(count=Count("version"), head=Max("version"))
    )
    return found["count"], found["head"] or 0


def page_number(head: int, text: str | None) -> int:
    """Parse `?page=` ("last" for the last); raise ValueError for anything else."""
    pages = max(1, math.ceil(head / PAGE_SIZE))
    if not text:
        return 1
    if text == "last":
        return pages
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{text!r} is not a page number")
    return min(int(text), pages)


def page_of_version(version: int) -> int:
    return max(1, math.ceil(version / PAGE_SIZE))


def version_at(store: EventStore, aggregate_id: uuid.UUID, moment: dt.datetime) -> int:
    """Return the last version recorded at or before `moment` (0 when none was)."""
    return store.recorder.version_at(aggregate_id, moment) or 0


@dataclass
class Prior:
    """The aggregate replayed through the version before a page, and how."""

    aggregate: Aggregate | None
    version: int  # the version replayed through
    errors: int = 0  # events before the page that could not be replayed
    resumed_at: int = 0  # the cached boundary the replay went on from (0: from version 1)


class ReplayCache:
    """Aggregates as replayed through page boundaries, per stream, bounded, thread-safe.

    An entry holds the hash the boundary's event had when it was replayed: an entry is used
    only while the stored chain still runs through that hash.
    """

    def __init__(self, limit: int = CACHED_STATES) -> None:
        self.limit = limit
        self._streams: OrderedDict[tuple, dict[int, tuple[str, Aggregate, int]]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def nearest(self, key: tuple, version: int) -> tuple[int, str, Aggregate, int] | None:
        """Return the highest boundary at or below `version`: (version, hash, copy, errors)."""
        with self._lock:
            boundaries = self._streams.get(key)
            if not boundaries:
                return None
            self._streams.move_to_end(key)
            below = [boundary for boundary in boundaries if boundary <= version]
            if not below:
                return None
            boundary = max(below)
            event_hash, aggregate, errors = boundaries[boundary]
        return boundary, event_hash, copy.deepcopy(aggregate), errors

    def put(self, key: tuple, version: int, event_hash: str, aggregate: Aggregate, errors: int):
        state = (event_hash, copy.deepcopy(aggregate), errors)
        with self._lock:
            boundaries = self._streams.setdefault(key, {})
            self._streams.move_to_end(key)
            self._size += version not in boundaries
            boundaries[version] = state
            while self._size > self.limit and self._streams:
                _, evicted = self._streams.popitem(last=False)
                self._size -= len(evicted)

    def drop(self, key: tuple) -> None:
        with self._lock:
            self._size -= len(self._streams.pop(key, {}))

    def clear(self) -> None:
        with self._lock:
            self._streams.clear()
            self._size = 0


CACHE = ReplayCache()


def replay_before(
    store: EventStore,
    aggregate_id: uuid.UUID,
    cls: type[Aggregate] | None,
    page: Page,
    predecessor: StoredEvent | None,
    apply,
) -> Prior:
    """Replay the stream through the version before `page`, from the nearest valid boundary.

    `apply(aggregate, stored)` applies one event and returns an error text ("" if none).
    `predecessor` is the stored event just before the page, read with it: a boundary there
    whose hash differs from it is stale.
    """
    through = page.first - 1
    if cls is None or through < 1:
        return Prior(cls(aggregate_id) if cls else None, through)
    key = (getattr(store.recorder, "using", "default"), aggregate_id)
    hit = CACHE.nearest(key, through)
    if hit is not None and hit[0] == through:
        if predecessor is not None and predecessor.hash == hit[1]:
            return Prior(hit[2], through, hit[3], hit[0])
        CACHE.drop(key)
        hit = None
    prior = _replay(store, aggregate_id, cls, through, key, hit, apply)
    if prior is None:  # the chain no longer runs through the cached boundary
        CACHE.drop(key)
        prior = _replay(store, aggregate_id, cls, through, key, None, apply)
    return prior


def _replay(store, aggregate_id, cls, through, key, hit, apply) -> Prior | None:
    if hit is None:
        start, start_hash, aggregate, errors = 0, GENESIS_HASH, cls(aggregate_id), 0
    else:
        start, start_hash, aggregate, errors = hit
    for stored in store.read_stream(aggregate_id, after_version=start, to_version=through):
        if stored.version == start + 1 and hit is not None and stored.previous_hash != start_hash:
            return None
        if apply(aggregate, stored):
            errors += 1
        if stored.version % PAGE_SIZE == 0:
            CACHE.put(key, stored.version, stored.hash, aggregate, errors)
    return Prior(aggregate, through, errors, start)


def page_report(
    aggregate_id: uuid.UUID,
    page: Page,
    predecessor: StoredEvent | None,
    events: list[StoredEvent],
    using: str = "default",
):
    """Verify what one page shows: chain and ledger over its versions; return the report and
    the sealed leaves of its versions."""
    report = VerificationReport()
    expected = page.first
    previous = GENESIS_HASH if page.first == 1 else predecessor.hash if predecessor else ""
    tree = LedgerTree(using)
    sealed = tree.leaves_of_stream(aggregate_id, page.first, page.last)
    if page.first > 1 and predecessor is None and events:
        report.add(events[0], f"version {page.first - 1} before it is missing")
    seen = set()
    for event in events:
        check_event(event, expected, previous, report)
        leaf = sealed.get(event.version)
        if leaf is not None:
            compare_with_leaf(event, leaf, report)
        seen.add(event.version)
        expected, previous = event.version + 1, event.hash
    report.events_checked = len(events)
    if expected <= page.last:
        missing = MissingEvent(0, aggregate_id, expected)
        report.add(missing, f"versions {expected}-{page.last} are missing: events are missing")
    for version, leaf in sorted(sealed.items()):
        if version not in seen:
            missing = MissingEvent(leaf.position.id, aggregate_id, version)
            report.add(missing, f"sealed into the ledger at leaf {leaf.index}, now missing")
    if page.next is None:
        sealed_head = tree.sealed_head(aggregate_id)
        if sealed_head is not None and sealed_head > page.head:
            missing = MissingEvent(0, aggregate_id, page.head + 1)
            report.add(
                missing,
                f"the ledger sealed this stream up to version {sealed_head}; the log now ends "
                f"at version {page.head}: the stream was cut short",
            )
    report.breaks.sort(key=lambda chain_break: chain_break.version)
    return report, sealed
