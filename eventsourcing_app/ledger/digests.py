"""Signed ledger digests: their fields, canonical bytes, Ed25519 signatures and keys.

No Django and no database here: the offline verifier reads digests with this module alone.
`cryptography` is imported only when a key is used, so checking proofs without a key needs
nothing beyond the standard library.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

ALGORITHM = "rfc9162-sha256"
SIGNATURE_ALGORITHM = "ed25519"
FIELDS = ("tree_size", "root_hash", "last_position", "algorithm", "sealed_at", "key_id")
HEX_HASH = re.compile(r"[0-9a-f]{64}")
POSITION = re.compile(r"\d+-\d+")


class DigestError(ValueError):
    """A digest (or key) that is malformed: the message says what is wrong."""


def canonical_bytes(fields: dict[str, Any]) -> bytes:
    """Return the bytes that are signed: the fields as JSON, keys sorted, no spaces, UTF-8."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Digest:
    """A signed statement that the ledger held `tree_size` leaves with root `root_hash`."""

    tree_size: int
    root_hash: str
    last_position: str
    sealed_at: str
    key_id: str
    signature: str
    algorithm: str = ALGORITHM

    @property
    def root(self) -> bytes:
        return bytes.fromhex(self.root_hash)

    def signed_fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}

    def as_dict(self) -> dict[str, Any]:
        return {**self.signed_fields(), "signature": self.signature}

    @classmethod
    def from_dict(cls, data: Any) -> Digest:
        """Read a digest as JSON gives it; raise `DigestError` naming the first bad field."""
        if not isinstance(data, dict):
            raise DigestError("a digest is a JSON object")
        missing = [name for name in (*FIELDS, "signature") if name not in data]
        if missing:
            raise DigestError(f"the digest lacks {', '.join(missing)}")
        size = data["tree_size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise DigestError("tree_size must be a whole number >= 0")
        if not isinstance(data["root_hash"], str) or not HEX_HASH.fullmatch(data["root_hash"]):
            raise DigestError("root_hash must be 64 lowercase hex digits")
        if data["algorithm"] != ALGORITHM:
            raise DigestError(f"algorithm must be {ALGORITHM!r}, not {data['algorithm']!r}")
        if not isinstance(data["last_position"], str) or not POSITION.fullmatch(
            data["last_position"]
        ):
            raise DigestError("last_position must look like '0-42'")
        for name in ("sealed_at", "key_id", "signature"):
            if not isinstance(data[name], str):
                raise DigestError(f"{name} must be a string")
        return cls(
            tree_size=size,
            root_hash=data["root_hash"],
            last_position=data["last_position"],
            sealed_at=data["sealed_at"],
            key_id=data["key_id"],
            signature=data["signature"],
        )


def key_id(public_key) -> str:
    """Return a short name of a public key: the first 16 hex digits of SHA-256 of its bytes."""
    return hashlib.sha256(public_bytes(public_key)).hexdigest()[:16]


def public_bytes(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def seal(*, tree_size: int, root: bytes, last_position: str, sealed_at: str, private_key) -> Digest:
    """Return the digest of a tree, signed with `private_key` (an Ed25519 private key)."""
    fields = {
        "tree_size": tree_size,
        "root_hash": root.hex(),
        "last_position": last_position,
        "algorithm": ALGORITHM,
        "sealed_at": sealed_at,
        "key_id": key_id(private_key.public_key()),
    }
    signature = private_key.sign(canonical_bytes(fields))
    return Digest(**fields, signature=base64.b64encode(signature).decode())


def signature_valid(digest: Digest, public_key) -> bool:
    """Return whether `digest` was signed by the key and not changed since."""
    from cryptography.exceptions import InvalidSignature

    try:
        signature = base64.b64decode(digest.signature, validate=True)
        public_key.verify(signature, canonical_bytes(digest.signed_fields()))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def generate_private_key_pem() -> bytes:
    """Return a new Ed25519 private key as unencrypted PKCS#8 PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(text: str | bytes):
    """Return the Ed25519 private key in PEM, or in base64 of its 32 raw bytes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = text.encode() if isinstance(text, str) else text
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(
                base64.b64decode(data.strip(), validate=True)
            )
    except (ValueError, TypeError, binascii.Error) as exc:
        raise DigestError(f"the signing key is not an Ed25519 private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise DigestError("the signing key is not an Ed25519 private key")
    return key


def load_public_key(text: str | bytes):
    """Return an Ed25519 public key from PEM, base64 of its 32 bytes, or `/api/ledger/key/`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = text.encode() if isinstance(text, str) else text
    try:
        if data.lstrip().startswith(b"{"):
            data = json.loads(data)["public_key"].encode()
        if b"-----BEGIN" in data:
            key = serialization.load_pem_public_key(data)
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(data.strip(), validate=True))
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error) as exc:
        raise DigestError(f"the public key is not an Ed25519 public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise DigestError("the public key is not an Ed25519 public key")
    return key


def public_key_document(public_key) -> dict[str, str]:
    """Return what `GET /api/ledger/key/` serves: the key in base64 and PEM, and its id."""
    from cryptography.hazmat.primitives import serialization

    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "key_id": key_id(public_key),
        "algorithm": SIGNATURE_ALGORITHM,
        "public_key": base64.b64encode(public_bytes(public_key)).decode(),
        "public_key_pem": pem.decode(),
    }
