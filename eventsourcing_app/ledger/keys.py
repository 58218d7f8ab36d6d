"""The ledger's Ed25519 signing key: from settings or the environment, never the database."""

from __future__ import annotations

import functools
from pathlib import Path

from eventsourcing_app import conf
from eventsourcing_app.ledger import digests


class NoSigningKey(LookupError):
    """No signing key is configured, so no digest can be sealed."""

    def __init__(self) -> None:
        super().__init__(
            "no ledger signing key: set LEDGER_SIGNING_KEY_FILE (a PEM file) or "
            "LEDGER_SIGNING_KEY in the environment or in EVENTSOURCING; "
            "`manage.py ledger_keygen FILE` makes one"
        )


def signing_key():
    """Return the configured Ed25519 private key; raise `NoSigningKey` when there is none."""
    return _load(conf.get("LEDGER_SIGNING_KEY"), conf.get("LEDGER_SIGNING_KEY_FILE"))


def public_key():
    """Return the public half of the signing key."""
    return signing_key().public_key()


def configured() -> bool:
    """Return whether a signing key is set, or its file exists (it may still fail to load).

    A key file that is named but not made yet counts as no key: the demo names one that
    `manage.py ledger_keygen` makes on first run.
    """
    path = conf.get("LEDGER_SIGNING_KEY_FILE")
    return bool(conf.get("LEDGER_SIGNING_KEY") or (path and Path(path).exists()))


@functools.lru_cache(maxsize=4)
def _load(text: str | None, path: str | None):
    if text:
        return digests.load_private_key(text)
    if path and Path(path).exists():
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise digests.DigestError(
                f"cannot read the ledger signing key {path}: {exc.strerror}"
            ) from None
        return digests.load_private_key(data)
    raise NoSigningKey
