"""Seal the log into the ledger: extend the Merkle tree batch by batch and sign digests of it.

Every extension runs in a transaction that holds the `ledger` checkpoint's row lock, whoever
runs it (the follower inside `run_projections`, or `manage.py ledger_digest`), so the tree
grows by exactly the events after the checkpoint, once, in log order. Digests are stored in
`ledger_digests` and, once committed, written as files: the copy that leaves the database.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from eventsourcing_app import conf
from eventsourcing_app.core.records import EventHash, Position, StoredEvent
from eventsourcing_app.core.store import EventStore
from eventsourcing_app.following import checkpoints
from eventsourcing_app.ledger import digests, keys, merkle
from eventsourcing_app.ledger.tree import LedgerTree
from eventsourcing_app.models import LedgerDigest
from eventsourcing_app.wiring import get_recorder

NAME = "ledger"
logger = logging.getLogger("eventsourcing.ledger")


def leaf_of(event: StoredEvent | EventHash) -> bytes:
    """Return the leaf hash of an event: SHA-256(0x00 || its `hash` column as ASCII)."""
    return merkle.leaf_hash(event.hash.encode("ascii"))


class Sealer:
    """Extend one database's tree, remembering its right edge between batches."""

    def __init__(self, using: str = "default") -> None:
        self.using = using
        self.tree = LedgerTree(using)
        self._frontier: merkle.Frontier | None = None

    def frontier(self) -> merkle.Frontier:
        """Return a copy of the committed right edge (reloaded when another sealer moved it)."""
        size = self.tree.size()
        if self._frontier is None or self._frontier.size != size:
            self._frontier = self.tree.frontier(size)
        return copy.deepcopy(self._frontier)

    def extend(self, events: Sequence[StoredEvent | EventHash]) -> merkle.Frontier:
        """Seal `events`, the next ones in log order, inside the caller's transaction."""
        frontier = self.frontier()
        leaves, nodes = [], []
        for event in events:
            leaf = leaf_of(event)
            leaves.append(
                (frontier.size, event.id, event.transaction_id, event.aggregate_id,
                 event.version, leaf)
            )  # fmt: skip
            nodes.extend(frontier.append(leaf))
        self.tree.insert(leaves, nodes)
        transaction.on_commit(lambda: setattr(self, "_frontier", frontier), using=self.using)
        return frontier

    def seal(self, frontier: merkle.Frontier, last_position: Position) -> digests.Digest:
        """Sign and store a digest of the tree `frontier` ends; write its file on commit."""
        digest = digests.seal(
            tree_size=frontier.size,
            root=frontier.root(),
            last_position=str(last_position),
            sealed_at=timezone.now().isoformat(timespec="microseconds"),
            private_key=keys.signing_key(),
        )
        LedgerDigest.objects.using(self.using).bulk_create([LedgerDigest(**digest.as_dict())])
        transaction.on_commit(lambda: write_digest_file(digest), using=self.using)
        return digest

    def due(self, size: int) -> bool:
        """Return whether a digest of a tree of `size` leaves should be sealed now."""
        every = {"events": 10000, "seconds": 60, **conf.get("LEDGER_DIGEST_EVERY")}
        last = latest_digest(self.using)
        if last is None:
            return size > 0
        if size <= last.tree_size:
            return False
        if size - last.tree_size >= every["events"]:
            return True
        waited = timezone.now() - dt.datetime.fromisoformat(last.sealed_at)
        return waited.total_seconds() >= every["seconds"]


def latest_digest(using: str = "default") -> digests.Digest | None:
    """Return the newest digest stored, or None before the first."""
    row = LedgerDigest.objects.using(using).order_by("-id").first()
    return None if row is None else digests.Digest.from_dict(_fields(row))


def _fields(row: LedgerDigest) -> dict:
    return {name: getattr(row, name) for name in (*digests.FIELDS, "signature")}


def write_digest_file(digest: digests.Digest, directory: str | None = None) -> Path | None:
    """Write `digest` as a JSON file in the digest directory; log (never raise) a failure."""
    folder = Path(directory or conf.get("LEDGER_DIGEST_DIR"))
    sealed = dt.datetime.fromisoformat(digest.sealed_at).astimezone(dt.UTC)
    stamp = sealed.strftime("%Y%m%dT%H%M%S.%fZ")
    path = folder / f"digest-{digest.tree_size:012d}-{stamp}.json"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_json(path, digest.as_dict())
    except OSError as exc:
        logger.error("digest of %d events not written to %s: %s", digest.tree_size, path, exc)
        return None
    return path


def write_json(path: Path, document: dict) -> None:
    """Write a JSON document whole or not at all (a reader never sees half a digest)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".digest-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as file:
            json.dump(document, file, indent=2, sort_keys=True)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class LedgerSink:
    """The `ledger` follower: extends the tree with each batch, in the checkpoint's transaction."""

    name = NAME
    checkpoint_in_transaction = True
    logger = logger

    def __init__(self, using: str = "default") -> None:
        self.sealer = Sealer(using)
        self.using = using
        self.batch_size = conf.get("LEDGER_BATCH_SIZE")
        # Only positions, streams and hashes: decoding every event's JSON would cost the most.
        self.read_log = get_recorder(using).read_log_hashes
        self._warned = False

    def handle(self, events: Sequence[StoredEvent]) -> None:
        frontier = self.sealer.extend(events)
        self._seal_if_due(frontier, events[-1].position)

    def caught_up(self) -> None:
        """Seal a digest the clock made due while no new events arrived."""
        with transaction.atomic(using=self.using):
            position = checkpoints.lock(NAME, self.using).position
            frontier = self.sealer.frontier()
            self._seal_if_due(frontier, position)

    def delivered(self, events: Sequence[StoredEvent], milliseconds: float) -> None:
        logger.info("ledger sealed %d events up to %s in %.1f ms",
                    len(events), events[-1].position, milliseconds)  # fmt: skip

    def retry_delay(self, failures: int) -> float:
        return min(2.0 ** max(failures - 1, 0), 30.0)

    def close(self) -> None:
        """Nothing in flight: every batch committed or rolled back."""

    def _seal_if_due(self, frontier: merkle.Frontier, position: Position) -> None:
        if not self.sealer.due(frontier.size):
            return
        if not keys.configured():
            if not self._warned:
                logger.warning("the ledger grows but seals no digest: %s", keys.NoSigningKey())
                self._warned = True
            return
        digest = self.sealer.seal(frontier, position)
        logger.info("sealed a digest of %d events, root %s", digest.tree_size, digest.root_hash)


def seal_now(
    store: EventStore,
    *,
    using: str = "default",
    progress: Callable[[int], None] | None = None,
) -> digests.Digest:
    """Seal every event a log reader can see now, then sign and store a digest of the tree."""
    keys.signing_key()  # refuse before any work when no digest could be signed
    sealer = Sealer(using)
    recorder = store.recorder
    checkpoints.ensure([NAME], using)
    batch_size = conf.get("LEDGER_BATCH_SIZE")
    while True:
        with transaction.atomic(using=using):
            position = checkpoints.lock(NAME, using).position
            events = recorder.read_log_hashes(position, batch_size)
            frontier = sealer.extend(events) if events else sealer.frontier()
            if events:
                position = events[-1].position
                checkpoints.advance(NAME, position, using)
            if progress is not None:
                progress(len(events))
            if len(events) < batch_size:
                return sealer.seal(frontier, position)
