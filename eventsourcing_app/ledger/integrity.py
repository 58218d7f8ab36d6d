"""Check the log against the ledger: one stream for a page or an answer, or the whole log.

A stream is intact when its chain verifies and every event the ledger sealed for it is still
there with the hash that was sealed. That catches what a chain alone cannot: a stream cut
short and a consistent rewrite of every hash after an altered event.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from eventsourcing_app.core.protocols import Recorder
from eventsourcing_app.core.records import START
from eventsourcing_app.core.verification import VerificationReport, verify_chains
from eventsourcing_app.ledger import merkle
from eventsourcing_app.ledger.digests import Digest
from eventsourcing_app.ledger.sealer import leaf_of
from eventsourcing_app.ledger.tree import Leaf, LedgerDamaged, LedgerTree
from eventsourcing_app.models import Event

MAX_PROBLEMS = 20


@dataclass(frozen=True)
class MissingEvent:
    """A sealed event that the log no longer holds (it stands in for a StoredEvent)."""

    id: int
    aggregate_id: uuid.UUID
    version: int


def stream_integrity(
    recorder: Recorder, aggregate_id: uuid.UUID, using: str = "default"
) -> VerificationReport:
    """Verify one stream's chain and compare its events with the leaves sealed for them.

    The stream is read once; memory grows with the leaves sealed for it, not with its events'
    content.
    """
    sealed = LedgerTree(using).leaves_of_stream(aggregate_id)
    stored: set[int] = set()

    def compare(event, report: VerificationReport) -> None:
        stored.add(event.version)
        leaf = sealed.get(event.version)
        if leaf is not None:
            compare_with_leaf(event, leaf, report)

    report = verify_chains(recorder, aggregate_id=aggregate_id, each=compare)
    for version, leaf in sorted(sealed.items()):
        if version not in stored:
            missing = MissingEvent(leaf.position.id, aggregate_id, version)
            report.add(missing, f"sealed into the ledger at leaf {leaf.index}, now missing")
    report.breaks.sort(key=lambda chain_break: chain_break.version)
    return report


def compare_with_leaf(event, leaf: Leaf, report: VerificationReport) -> None:
    """Add to `report` how `event` differs from the leaf sealed for its version, if it does."""
    if leaf.position.id != event.id:
        report.add(event, f"sealed as event {leaf.position.id} at leaf {leaf.index}: it moved")
    elif leaf.hash != leaf_of(event):
        report.add(
            event,
            f"its hash differs from the one sealed at leaf {leaf.index}: it was rewritten",
        )


@dataclass
class LedgerReport:
    """What a check of the ledger tables against the log found (first problem first)."""

    leaves_checked: int = 0
    problems: list[str] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.problems = []

    @property
    def intact(self) -> bool:
        return not self.problems


def check_ledger(
    recorder: Recorder,
    using: str = "default",
    *,
    batch_size: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> LedgerReport:
    """Check every sealed leaf against the event in its place, and every stored node.

    Reads the log and the leaves side by side in constant memory, recomputing the tree as it
    goes; the first mismatches are reported.
    """
    tree = LedgerTree(using)
    report = LedgerReport()
    frontier = merkle.Frontier()
    position, after = START, -1
    while leaves := tree.leaves(after, batch_size):
        events = recorder.read_log(position, len(leaves), holdback=False)
        completed = []
        for offset, leaf in enumerate(leaves):
            if leaf.index != after + 1 + offset:
                report.problems.append(f"ledger leaf {after + 1 + offset} is missing")
                return report
            event = events[offset] if offset < len(events) else None
            _check_leaf(leaf, event, report)
            completed.extend(frontier.append(leaf.hash))
        _check_nodes(tree, completed, report)
        if len(report.problems) >= MAX_PROBLEMS:
            return report
        report.leaves_checked += len(leaves)
        if progress is not None:
            progress(len(leaves))
        after = leaves[-1].index
        position = events[-1].position if events else position
    return report


def _check_leaf(leaf: Leaf, event, report: LedgerReport) -> None:
    where = f"ledger leaf {leaf.index} ({leaf.describe()})"
    if event is None:
        report.problems.append(f"{where}: the log has no event in its place")
    elif event.id != leaf.position.id or event.transaction_id != leaf.position.transaction:
        report.problems.append(
            f"{where}: the log has event {event.id} ({event.aggregate_id} v{event.version}) "
            "in its place"
        )
    elif leaf.hash != leaf_of(event):
        report.problems.append(f"{where}: the leaf does not match the event's hash")


def _check_nodes(tree: LedgerTree, completed, report: LedgerReport) -> None:
    if not completed:
        return
    try:
        stored = tree.nodes(key for key, _ in completed)
    except LedgerDamaged as exc:
        report.problems.append(str(exc))
        return
    for (level, index), value in completed:
        if stored[(level, index)] != value:
            report.problems.append(
                f"ledger node {index} of level {level} does not match the leaves below it"
            )


def check_against_digest(
    recorder: Recorder,
    digest: Digest,
    using: str = "default",
    *,
    batch_size: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> str | None:
    """Recompute the root of the log's first `tree_size` events; return the first problem.

    None means the log still holds exactly the history the digest sealed. The ledger tables are
    read alongside only to name what changed; the verdict rests on the rows and the digest.
    """
    tree = LedgerTree(using)
    frontier = merkle.Frontier()
    first_difference: tuple[int, object, Leaf | None] | None = None
    position, after = START, -1
    while frontier.size < digest.tree_size:
        wanted = min(batch_size, digest.tree_size - frontier.size)
        events = recorder.read_log(position, wanted, holdback=False)
        if not events:
            break
        leaves = {leaf.index: leaf for leaf in tree.leaves(after, len(events))}
        for event in events:
            index, leaf_hash = frontier.size, leaf_of(event)
            sealed = leaves.get(index)
            if first_difference is None and (
                sealed is None or sealed.position.id != event.id or sealed.hash != leaf_hash
            ):
                first_difference = (index, event, sealed)
            frontier.append(leaf_hash)
        if progress is not None:
            progress(len(events))
        position, after = events[-1].position, frontier.size - 1
    if frontier.size < digest.tree_size:
        held = f"the log holds {frontier.size} of the {digest.tree_size} events the digest sealed"
        if first_difference is not None and first_difference[2] is not None:
            # Events went missing before the end: name the first, not the last leaf sealed.
            return f"{held}; {_difference(*first_difference, recorder, using)}"
        missing = tree.leaves(frontier.size - 1, 1)
        return held + (f"; first missing: {_missing(missing[0], recorder)}" if missing else "")
    if frontier.root() == digest.root:
        return None
    if first_difference is None:
        return (
            f"the first {digest.tree_size} events do not give the digest's root, and the ledger "
            "tables were rewritten to match them: the altered event cannot be named from here"
        )
    return _difference(*first_difference, recorder, using)


def _difference(index: int, event, sealed: Leaf | None, recorder: Recorder, using: str) -> str:
    """Name the first event of the log that is not the one sealed at its leaf."""
    if sealed is None:
        return f"leaf {index} is missing from the ledger, and the log differs from the digest"
    stream_version = (event.aggregate_id, event.version)
    if sealed.position.id != event.id or (sealed.aggregate_id, sealed.version) != stream_version:
        # The sealed event is still there if its stream still has its version: swapping two
        # events' ids swaps their places and leaves both ids in use.
        now = (
            Event.objects.using(using)
            .filter(aggregate_id=sealed.aggregate_id, version=sealed.version)
            .values_list("id", flat=True)
            .first()
        )
        if now is None:
            return f"first missing: {_missing(sealed, recorder)}"
        renumbered = f"; it is event {now} now" if now != sealed.position.id else ""
        return (
            f"events were reordered: leaf {index} sealed {sealed.describe()}, and the log "
            f"now has event {event.id} ({event.aggregate_id} v{event.version}) in its place"
            + renumbered
        )
    return (
        f"event {event.id} ({event.aggregate_id} v{event.version}) was altered after it was "
        f"sealed at leaf {index}: its hash is not the one the digest covers"
    )


def _missing(leaf: Leaf, recorder: Recorder) -> str:
    head = recorder.stream_head(leaf.aggregate_id)
    what = f"{leaf.describe()}, sealed at leaf {leaf.index}, is missing from the log"
    if head is None:
        return f"stream {leaf.aggregate_id} was deleted: {what}"
    if head.version < leaf.version:
        return f"stream {leaf.aggregate_id} was cut short at v{head.version}: {what}"
    return what
