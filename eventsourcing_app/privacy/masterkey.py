"""The master key that wraps data subjects' keys: from settings or the environment, never the
database. Earlier master keys stay readable while `rotate_master_key` re-wraps under the new."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import keywrap

from eventsourcing_app import conf
from eventsourcing_app.core.personal import KEY_BYTES, PersonalDataError


class NoMasterKey(PersonalDataError):
    """No master key is configured: personal fields can be neither sealed nor opened."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "no master key for personal data: set PERSONAL_DATA_KEY_FILE (a file holding 32 "
            "random bytes in base64) or PERSONAL_DATA_KEY, in the environment or in "
            "EVENTSOURCING; `manage.py personal_data_keygen FILE` makes one"
        )


def key_id(key: bytes) -> str:
    """A master key's public name: the start of its SHA-256 (the key itself never shows)."""
    return hashlib.sha256(b"eventsourcing master key\x00" + key).hexdigest()[:16]


def parse(text: str | bytes, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise PersonalDataError(f"the master key in {where} is not base64") from None
    if len(key) != KEY_BYTES:
        raise PersonalDataError(
            f"the master key in {where} has {len(key)} bytes; it needs {KEY_BYTES}"
        )
    return key


def generate() -> bytes:
    """Return a new master key, as the base64 text a key file holds."""
    return base64.b64encode(os.urandom(KEY_BYTES)) + b"\n"


def current() -> tuple[str, bytes]:
    """Return the master key to wrap with, and its id; raise `NoMasterKey` when none is set."""
    return _current(conf.get("PERSONAL_DATA_KEY"), conf.get("PERSONAL_DATA_KEY_FILE"))


def readable() -> dict[str, bytes]:
    """Return every master key that may unwrap a data key, by id (the current one first)."""
    keys = dict([current()])
    for path in conf.get("PERSONAL_DATA_RETIRED_KEY_FILES") or []:
        key = _file(str(path))
        keys.setdefault(key_id(key), key)
    return keys


def configured() -> bool:
    path = conf.get("PERSONAL_DATA_KEY_FILE")
    return bool(conf.get("PERSONAL_DATA_KEY") or (path and Path(path).exists()))


def wrap(data_key: bytes) -> tuple[str, bytes]:
    """Wrap a data key (RFC 3394 AES key wrap) under the current master key."""
    master_id, master = current()
    return master_id, keywrap.aes_key_wrap(master, data_key)


def unwrap(master_id: str, wrapped: bytes) -> bytes:
    keys = readable()
    if master_id not in keys:
        raise PersonalDataError(
            f"a data key is wrapped by the master key {master_id}, which is not configured: "
            "name it in PERSONAL_DATA_RETIRED_KEY_FILES until `rotate_master_key` has run"
        )
    try:
        return keywrap.aes_key_unwrap(keys[master_id], bytes(wrapped))
    except keywrap.InvalidUnwrap:
        raise PersonalDataError(
            f"a data key does not unwrap under the master key {master_id}: it was altered"
        ) from None


@functools.lru_cache(maxsize=4)
def _current(text: str | None, path: str | None) -> tuple[str, bytes]:
    if text:
        key = parse(text, "PERSONAL_DATA_KEY")
    elif path and Path(path).exists():
        key = _file(path)
    else:
        raise NoMasterKey
    return key_id(key), key


@functools.lru_cache(maxsize=8)
def _file(path: str) -> bytes:
    try:
        return parse(Path(path).read_bytes(), path)
    except OSError as exc:
        raise PersonalDataError(f"cannot read the master key {path}: {exc.strerror}") from None
