"""Checks of saved ledger proofs against signed digests, for the offline verifier `__main__`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from eventsourcing_app.ledger import merkle
from eventsourcing_app.ledger.digests import (
    POSITION,
    Digest,
    DigestError,
    key_id,
    load_public_key,
    signature_valid,
)

HEX_32 = re.compile(r"[0-9a-fA-F]{64}")
T = TypeVar("T")


class InputError(Exception):
    """A file that cannot be read as what it should be: the verifier exits 2."""


class VerificationFailed(Exception):
    """Well-formed files that do not prove what they claim: the verifier exits 1."""


def _whole(data: dict[str, Any], name: str, minimum: int) -> int:
    value = data.get(name)
    # JSON true/false arrive as bool, which Python counts as int.
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InputError(f"{name} must be a whole number >= {minimum}, not {value!r}")
    return value


def _hash(value: Any, name: str) -> bytes:
    if not isinstance(value, str) or not HEX_32.fullmatch(value):
        raise InputError(f"{name} must be 64 hex digits (a SHA-256 hash), not {value!r}")
    return bytes.fromhex(value)


def _hashes(data: dict[str, Any], name: str) -> list[bytes]:
    value = data.get(name)
    if not isinstance(value, list):
        raise InputError(f"{name} must be a list of hex hashes, not {value!r}")
    return [_hash(item, f"{name}[{n}]") for n, item in enumerate(value)]


def _object(data: Any, what: str, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InputError(f"{what} is a JSON object, not {type(data).__name__}")
    missing = [name for name in required if name not in data]
    if missing:
        raise InputError(f"{what} lacks {', '.join(missing)}")
    return data


def event_leaf(event_hash: str) -> bytes:
    """Return the leaf of an event: SHA-256(0x00 || its hash column as ASCII)."""
    return merkle.leaf_hash(event_hash.encode("ascii"))


def parse_event_hash(value: Any, name: str = "event_hash") -> str:
    """Return an event's hash as the hash column stores it: 64 lowercase hex digits."""
    _hash(value, name)
    # The column holds hexdigest() output, and the leaf hashes those ASCII bytes, so case matters.
    return value.lower()


@dataclass(frozen=True)
class InclusionProof:
    """What `GET /api/ledger/inclusion/` returns: leaf `leaf_index` is in a tree of `tree_size`."""

    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    audit_path: list[bytes]
    position: str | None = None
    event_id: int | None = None
    event_hash: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> InclusionProof:
        """Read a proof as JSON gives it; raise `InputError` naming the first bad field."""
        data = _object(
            data, "an inclusion proof", ("leaf_index", "tree_size", "leaf_hash", "audit_path")
        )
        index = _whole(data, "leaf_index", 0)
        size = _whole(data, "tree_size", 1)
        if index >= size:
            raise InputError(f"leaf_index {index} is not below tree_size {size}")
        position = data.get("position")
        if position is not None and not (
            isinstance(position, str) and POSITION.fullmatch(position)
        ):
            raise InputError(f"position must look like '0-42', not {position!r}")
        event_id = data.get("event_id")
        if event_id is not None and (not isinstance(event_id, int) or isinstance(event_id, bool)):
            raise InputError(f"event_id must be a whole number, not {event_id!r}")
        event_hash = data.get("event_hash")
        return cls(
            leaf_index=index,
            tree_size=size,
            leaf_hash=_hash(data["leaf_hash"], "leaf_hash"),
            audit_path=_hashes(data, "audit_path"),
            position=position,
            event_id=event_id,
            event_hash=None if event_hash is None else parse_event_hash(event_hash),
        )


@dataclass(frozen=True)
class ConsistencyProof:
    """What `GET /api/ledger/consistency/` returns: the tree of `second` extends that of `first`."""

    first: int
    second: int
    path: list[bytes]

    @classmethod
    def from_dict(cls, data: Any) -> ConsistencyProof:
        """Read a proof as JSON gives it; raise `InputError` naming the first bad field."""
        data = _object(data, "a consistency proof", ("first", "second", "path"))
        first, second = _whole(data, "first", 0), _whole(data, "second", 0)
        if first > second:
            raise InputError(f"first ({first}) is above second ({second})")
        return cls(first=first, second=second, path=_hashes(data, "path"))


def read_json(path: str) -> Any:
    """Return the JSON document in file `path`; raise `InputError` saying why it cannot."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not JSON: {exc}") from None


def _from_file(path: str, parse: Callable[[Any], T]) -> T:
    document = read_json(path)
    try:
        return parse(document)
    except (InputError, DigestError) as exc:
        raise InputError(f"{path}: {exc}") from None


def load_inclusion(path: str) -> InclusionProof:
    """Return the inclusion proof saved in file `path`."""
    return _from_file(path, InclusionProof.from_dict)


def load_consistency(path: str) -> ConsistencyProof:
    """Return the consistency proof saved in file `path`."""
    return _from_file(path, ConsistencyProof.from_dict)


def load_digest(path: str) -> Digest:
    """Return the signed digest saved in file `path`."""
    return _from_file(path, Digest.from_dict)


def load_key(path: str):
    """Return the Ed25519 public key in file `path` (PEM, base64, or `/api/ledger/key/` JSON)."""
    try:
        with open(path, "rb") as file:
            return load_public_key(file.read())
    except ImportError:
        raise InputError(
            "checking signatures needs the cryptography package: pip install cryptography"
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except DigestError as exc:
        raise InputError(f"{path}: {exc}") from None


def check_signature(digest: Digest, public_key, name: str) -> str:
    """Return a line saying the digest `name` is signed by the key; raise if it is not."""
    expected = key_id(public_key)
    # key_id is a signed field, so a mismatch means another key, or a digest changed after
    # signing; saying which key is wanted tells the auditor which of the two to suspect.
    if digest.key_id != expected:
        raise VerificationFailed(
            f"{name} names key_id {digest.key_id}, but the public key given is {expected}: "
            "fetch the key the digest names, or the digest was altered"
        )
    if not signature_valid(digest, public_key):
        raise VerificationFailed(
            f"the signature of {name} is not valid for key {expected}: "
            "the digest was altered after it was signed"
        )
    return f"signature of {name}: valid, key {expected}"


def _not_checked(name: str) -> str:
    return (
        f"signature of {name}: NOT checked (no --public-key): the root is only as trustworthy "
        "as wherever the digest file came from"
    )


def verify_inclusion(
    proof: InclusionProof,
    digest: Digest,
    *,
    event_hash: str | None = None,
    public_key=None,
) -> list[str]:
    """Return the summary of a proof that checks out; raise `VerificationFailed` if it does not.

    `event_hash`, when given, overrides the proof's own: it is the hash the auditor holds.
    """
    # The signature comes first: a proof against an unauthenticated root proves nothing.
    signature = (
        check_signature(digest, public_key, "the digest")
        if public_key is not None
        else _not_checked("the digest")
    )
    if proof.tree_size != digest.tree_size:
        raise VerificationFailed(
            f"the proof is for tree_size {proof.tree_size} but the digest seals "
            f"{digest.tree_size}: ask for a proof at tree_size={digest.tree_size} "
            f"(/api/ledger/inclusion/?position={proof.position or 'T-I'}"
            f"&tree_size={digest.tree_size})"
        )
    claimed = event_hash if event_hash is not None else proof.event_hash
    if claimed is not None and event_leaf(claimed) != proof.leaf_hash:
        raise VerificationFailed(
            f"the leaf is not that event: SHA-256(0x00 || {claimed}) is "
            f"{event_leaf(claimed).hex()}, the proof's leaf_hash is {proof.leaf_hash.hex()}"
        )
    if not merkle.verify_inclusion(
        proof.leaf_index, proof.tree_size, proof.leaf_hash, proof.audit_path, digest.root
    ):
        needed = len(merkle.inclusion_ranges(proof.leaf_index, proof.tree_size))
        why = (
            f"the audit path has {len(proof.audit_path)} hashes where leaf {proof.leaf_index} "
            f"of {proof.tree_size} needs {needed}"
            if needed != len(proof.audit_path)
            else f"leaf {proof.leaf_index} and its audit path hash to another root than "
            f"{digest.root_hash}"
        )
        raise VerificationFailed(f"the proof does not lead to the digest's root: {why}")
    event = ""
    if proof.position is not None:
        event += f", position {proof.position}"
    if proof.event_id is not None:
        event += f", event {proof.event_id}"
    checked = (
        f"the leaf is event hash {claimed}"
        if claimed is not None
        else "no event hash given, so the leaf was not matched to an event"
    )
    return [
        f"OK: leaf {proof.leaf_index}{event} is in the tree of {proof.tree_size} leaves "
        f"({checked})",
        f"root: {digest.root_hash} (sealed at {digest.sealed_at})",
        signature,
    ]


def verify_consistency(
    proof: ConsistencyProof, old: Digest, new: Digest, *, public_key=None
) -> list[str]:
    """Return the summary of a proof that `new` extends `old`; raise `VerificationFailed` if not."""
    if public_key is not None:
        signatures = [
            check_signature(old, public_key, "the old digest"),
            check_signature(new, public_key, "the new digest"),
        ]
    else:
        signatures = [_not_checked("either digest")]
    ask = f"ask for /api/ledger/consistency/?first={old.tree_size}&second={new.tree_size}"
    if old.tree_size != proof.first:
        raise VerificationFailed(
            f"the old digest seals tree_size {old.tree_size} but the proof starts from "
            f"first={proof.first}: {ask}"
        )
    if new.tree_size != proof.second:
        raise VerificationFailed(
            f"the new digest seals tree_size {new.tree_size} but the proof goes to "
            f"second={proof.second}: {ask}"
        )
    if not merkle.verify_consistency(proof.first, proof.second, proof.path, old.root, new.root):
        # An empty tree, or one compared with itself, needs no hashes (RFC 9162 leaves both
        # undefined; merkle.verify_consistency accepts them with an empty path).
        needed = (
            len(merkle.consistency_ranges(proof.first, proof.second))
            if 0 < proof.first < proof.second
            else 0
        )
        if len(proof.path) != needed:
            why = (
                f"the path has {len(proof.path)} hashes where {proof.first} -> {proof.second} "
                f"needs {needed}"
            )
        elif proof.first == proof.second:
            why = (
                f"both digests seal {proof.first} leaves but with different roots: "
                "the log was rewritten, or they are of different logs"
            )
        else:
            why = (
                f"the path does not join root {old.root_hash} of {proof.first} leaves "
                f"to root {new.root_hash} of {proof.second}"
            )
        raise VerificationFailed(
            f"the proof does not show that the new tree extends the old: {why}"
        )
    return [
        f"OK: the tree of {proof.second} leaves extends the tree of {proof.first} leaves",
        f"old root: {old.root_hash} (sealed at {old.sealed_at})",
        f"new root: {new.root_hash} (sealed at {new.sealed_at})",
        *signatures,
    ]


def verify_digest(digest: Digest, public_key) -> list[str]:
    """Return the summary of a digest whose signature checks out; raise if it does not."""
    return [
        f"OK: {digest.tree_size} leaves, root {digest.root_hash}, last position "
        f"{digest.last_position}, sealed at {digest.sealed_at}",
        check_signature(digest, public_key, "the digest"),
    ]
