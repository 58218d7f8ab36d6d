"""Ledger questions the API and the audit pages answer: digests, inclusion and consistency proofs.

Each answer is what RFC 9162 defines, in the JSON shapes of the public contract; a question
the ledger cannot answer yet raises `ProofUnavailable` with a machine-readable code.
"""

from __future__ import annotations

from dataclasses import dataclass

from eventsourcing_app.core.records import Position
from eventsourcing_app.ledger import digests, keys, merkle
from eventsourcing_app.ledger.sealer import latest_digest
from eventsourcing_app.ledger.tree import Leaf, LedgerTree
from eventsourcing_app.models import Event


class ProofUnavailable(LookupError):
    """The ledger cannot answer (yet): `code` says why, for clients."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def inclusion_proof(position: Position, tree_size: int, using: str = "default") -> dict:
    """Return the proof that the event at `position` is leaf `leaf_index` of the tree."""
    tree = LedgerTree(using)
    size = tree.size()
    if tree_size > size:
        raise ProofUnavailable(
            "tree_size_beyond_ledger", f"the ledger holds {size} leaves, not {tree_size}"
        )
    leaf = tree.leaf_of_event(position.id)
    if leaf is None or leaf.position != position:
        raise ProofUnavailable("not_sealed", f"no event at position {position} is sealed yet")
    if leaf.index >= tree_size:
        raise ProofUnavailable(
            "not_in_tree",
            f"the event at {position} is leaf {leaf.index}, beyond a tree of {tree_size} leaves",
        )
    document = inclusion_document(tree, leaf, tree_size)
    event_hash = Event.objects.using(using).filter(id=leaf.position.id).values_list("hash")
    if row := event_hash.first():
        document["event_hash"] = row[0]
    return document


def inclusion_document(tree: LedgerTree, leaf: Leaf, tree_size: int) -> dict:
    path = tree.inclusion_path(leaf.index, tree_size)
    return {
        "leaf_index": leaf.index,
        "tree_size": tree_size,
        "leaf_hash": leaf.hash.hex(),
        "audit_path": [value.hex() for value in path],
        "position": str(leaf.position),
        "event_id": leaf.position.id,
    }


def consistency_proof(first: int, second: int, using: str = "default") -> dict:
    """Return the proof that the tree of `second` leaves extends the tree of `first`."""
    size = LedgerTree(using).size()
    if second > size:
        raise ProofUnavailable(
            "tree_size_beyond_ledger", f"the ledger holds {size} leaves, not {second}"
        )
    path = LedgerTree(using).consistency_path(first, second)
    return {"first": first, "second": second, "path": [value.hex() for value in path]}


def current_digest(using: str = "default") -> dict:
    """Return the newest digest, as sealed."""
    digest = latest_digest(using)
    if digest is None:
        raise ProofUnavailable("no_digest", "no digest has been sealed yet")
    return digest.as_dict()


def public_key_document() -> dict:
    """Return the public key that digests are signed with."""
    try:
        return digests.public_key_document(keys.public_key())
    except keys.NoSigningKey as exc:
        raise ProofUnavailable("no_signing_key", str(exc)) from None


@dataclass(frozen=True)
class LedgerEntry:
    """An event's place in the ledger, checked against the newest signed digest."""

    leaf: Leaf | None
    digest: digests.Digest | None
    verified: bool
    problem: str

    @property
    def sealed(self) -> bool:
        return self.leaf is not None


def ledger_entry(event_id: int, event_hash: str, using: str = "default") -> LedgerEntry:
    """Return an event's leaf and whether a proof from the stored tree reaches a signed digest.

    The proof is built from the ledger tables and checked against the digest's root and its
    signature, as an auditor's verifier would; anything that does not hold is named.
    """
    tree = LedgerTree(using)
    leaf = tree.leaf_of_event(event_id)
    if leaf is None:
        return LedgerEntry(None, None, False, "not sealed into the ledger yet")
    digest = latest_digest(using)
    if digest is None or digest.tree_size <= leaf.index:
        return LedgerEntry(leaf, None, False, "sealed, but no digest covers it yet")
    if leaf.hash != merkle.leaf_hash(event_hash.encode("ascii")):
        return LedgerEntry(leaf, digest, False, "the event's hash differs from its sealed leaf")
    try:
        path = tree.inclusion_path(leaf.index, digest.tree_size)
    except Exception as exc:  # a damaged ledger is an answer here, not an error page
        return LedgerEntry(leaf, digest, False, f"no proof can be built: {exc}")
    if not merkle.verify_inclusion(leaf.index, digest.tree_size, leaf.hash, path, digest.root):
        return LedgerEntry(leaf, digest, False, "the proof does not reach the digest's root")
    if not _signed(digest):
        return LedgerEntry(leaf, digest, False, "the digest's signature does not verify")
    return LedgerEntry(leaf, digest, True, "")


def _signed(digest: digests.Digest) -> bool:
    try:
        return digests.signature_valid(digest, keys.public_key())
    except (keys.NoSigningKey, digests.DigestError):
        return False
