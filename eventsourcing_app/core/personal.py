"""Personal data in events: which fields are whose, sealed under a data key per data subject.

An event type declares its personal fields and their data subject (`personal_data`). On append
the store replaces each such field's value by an envelope, the string
`"$personal:1:<data key id>:<base64 of nonce, ciphertext and tag>"`, sealed with AES-256-GCM
under the subject's data key; hash chains and the ledger cover the envelope. (A string, not an
object holding one: an object an event costs appends a tenth, in its JSON and in Python's
collector, and reads a dict an event.)
Reading opens envelopes with keys that still exist. Erasure destroys a subject's keys: its
fields then read as the declaration's `erased` value, for good, and every hash still verifies.

Key storage is a `KeyRing` (the Django app keeps keys in a table, wrapped by a master key).
Every use of a key asks the key ring, so no process opens an envelope after its key is gone.
"""

from __future__ import annotations

import binascii
import json
import os
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from eventsourcing_app.core.errors import DomainError, InvalidAppend

ENVELOPE = "$personal"
ENVELOPE_VERSION = 1
VERSION_TEXT = str(ENVELOPE_VERSION)
MARK = ENVELOPE + ":"  # what every envelope starts with, whatever its version
_HEAD = f"{MARK}{VERSION_TEXT}:"  # what an envelope of this version starts with
ERASED = "[erased]"
NONCE_BYTES = 12
KEY_BYTES = 32  # AES-256


class PersonalDataError(DomainError):
    """A personal field cannot be sealed or opened (no master key, a damaged envelope...)."""


class ForgottenSubject(PersonalDataError):
    """The data subject was forgotten: no new personal data of theirs is accepted."""

    def __init__(self, subject: str, message: str | None = None) -> None:
        super().__init__(
            message
            or f"the data subject {subject} was forgotten: their personal data cannot be "
            "recorded again under this subject"
        )
        self.subject = subject


@dataclass(frozen=True)
class PersonalFields:
    """An event type's personal fields and whose they are.

    `subject` names the data field that holds the subject's id; None means the stream itself
    (the aggregate id). `erased` is what each field reads as once the subject is forgotten.
    """

    fields: tuple[str, ...]
    subject: str | None = None
    erased: Any = ERASED

    def subject_of(self, aggregate_id: uuid.UUID | str, data: Mapping[str, Any]) -> str:
        if self.subject is None:
            return str(aggregate_id)
        value = data.get(self.subject)
        if value is None or value == "":
            raise InvalidAppend(f"the data subject field {self.subject!r} is empty")
        return str(value)


def personal_data(*fields: str, subject: str | None = None, erased: Any = ERASED):
    """Declare personal fields for `@event_type(..., personal=...)`."""
    if not fields or not all(isinstance(name, str) and name for name in fields):
        raise ValueError("personal_data() needs the names of one or more fields")
    return PersonalFields(tuple(fields), subject, erased)


class Declarations:
    """The personal fields of each event type, by stored type name."""

    def __init__(self) -> None:
        self._by_type: dict[str, PersonalFields] = {}

    def declare(self, event_type: str, fields: PersonalFields) -> None:
        self._by_type[event_type] = fields

    def get(self, event_type: str) -> PersonalFields | None:
        return self._by_type.get(event_type)

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._by_type

    def types(self) -> list[str]:
        return sorted(self._by_type)


declarations = Declarations()


def is_envelope(value: Any) -> bool:
    if type(value) is str:
        return value.startswith(MARK)
    return type(value) is dict and ENVELOPE in value  # the object form of earlier stores


def envelope_parts(value: Any) -> tuple[str, str] | None:
    """The key id and the base64 text of an envelope; None for anything else (not an
    envelope, another version, a damaged one).

    Also read: the object form earlier stores wrote, `{"$personal": "1:<key id>:<base64>"}`,
    the same parts under the same associated data (only its JSON differs)."""
    if type(value) is dict and len(value) == 1 and type(value.get(ENVELOPE)) is str:
        value = f"{MARK}{value[ENVELOPE]}"
    if type(value) is not str or not value.startswith(_HEAD):
        return None
    parts = value[len(_HEAD) :].split(":")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


def envelope_key_id(value: Any) -> str | None:
    """The data key an envelope names, None for anything else."""
    parts = envelope_parts(value)
    return parts[0] if parts else None


class KeyRing(Protocol):
    """Where data keys live. `active` gives a subject's key to seal with (made on first use);
    `lookup` gives keys to open with, None for each destroyed one."""

    def active(self, subject: str) -> tuple[str, AESGCM]: ...

    def lookup(self, key_ids: Collection[str]) -> dict[str, AESGCM | None]: ...


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def _aad(key_id: str, event_type: str, name: str) -> bytes:
    # The envelope is bound to its key, event type and field: it cannot be moved elsewhere.
    return f"{key_id}\x1f{event_type}\x1f{name}".encode()


# The sealed bytes start with the value's form: text as UTF-8, anything else as JSON.
TEXT, JSON = b"s", b"j"
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _seal(aead: AESGCM, key_id: str, aad: bytes, value: Any, nonce: bytes) -> str:
    plain = TEXT + value.encode() if type(value) is str else JSON + _dumps(value).encode()
    sealed = binascii.b2a_base64(nonce + aead.encrypt(nonce, plain, aad), newline=False)
    return f"{_HEAD}{key_id}:{sealed.decode()}"


def envelope_text(envelope: str) -> str:
    """The canonical JSON of an envelope `_seal` made (its key id and base64 text need
    no escaping), without walking it: what the store hashes."""
    return f'"{envelope}"'


def open_value(aead: AESGCM, envelope: str | dict, event_type: str, name: str) -> Any:
    try:
        parts = envelope_parts(envelope)
        if parts is None:
            raise ValueError("not an envelope")
        key_id, text = parts
        sealed = binascii.a2b_base64(text, strict_mode=True)
        plain = aead.decrypt(
            sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _aad(key_id, event_type, name)
        )
        if plain[:1] == TEXT:
            return plain[1:].decode()
        if plain[:1] == JSON:
            return json.loads(plain[1:])
        raise ValueError("an unknown form of sealed value")
    except (InvalidTag, KeyError, TypeError, ValueError) as exc:
        raise PersonalDataError(
            f"the personal field {name!r} of a {event_type} cannot be opened: the envelope was "
            f"altered or belongs elsewhere ({type(exc).__name__})"
        ) from None


class Sealing:
    """What one append's seals share: the subjects' keys already asked for (one key-ring call
    per subject; a stream's own subject is remembered by its id as given, too), the associated
    data of each key, type and field, and random nonces.

    The nonces are drawn from the operating system a block at a time, a system call for many
    seals instead of one each. A `Sealing` belongs to one append on one thread and is dropped
    after it: no two seals can be given one nonce, in threads or in a forked process.
    """

    __slots__ = ("_aads", "_next", "_nonces", "keys")

    NONCE_BLOCK = 64  # nonces drawn at once

    def __init__(self) -> None:
        self.keys: dict[object, tuple[str, AESGCM]] = {}
        self._aads: dict[tuple[str, str, str], bytes] = {}
        self._nonces = b""
        self._next = 0

    def aad(self, key_id: str, event_type: str, name: str) -> bytes:
        found = self._aads.get((key_id, event_type, name))
        if found is None:
            found = self._aads[key_id, event_type, name] = _aad(key_id, event_type, name)
        return found

    def nonce(self) -> bytes:
        start = self._next
        if start >= len(self._nonces):
            self._nonces, start = os.urandom(NONCE_BYTES * self.NONCE_BLOCK), 0
        self._next = start + NONCE_BYTES
        return self._nonces[start : start + NONCE_BYTES]


class Cipher:
    """Seal and open the declared personal fields of events, with the keys of a key ring."""

    def __init__(self, keyring: KeyRing, declared: Declarations = declarations) -> None:
        self.keyring = keyring
        self.declared = declared

    def seal(
        self,
        event_type: str,
        aggregate_id: uuid.UUID | str,
        data: dict,
        sealing: Sealing | None = None,
        texts: dict[str, str] | None = None,
    ) -> dict:
        """Return `data` with its personal fields sealed (unchanged for undeclared types).

        Every personal value given is sealed, even one that looks like an envelope: a client
        cannot pass another subject's envelope off as its own.
        `sealing` is what the seals of one append share (see `Sealing`); one of its own when
        not given. `texts`, when given, receives the canonical JSON of each new envelope by
        field name.
        """
        fields = self.declared.get(event_type)
        if fields is None:
            return data
        sealed = None
        for name in fields.fields:
            if name not in data:
                continue
            if sealed is None:
                if sealing is None:
                    sealing = Sealing()
                key_id, aead = self._active(fields, aggregate_id, data, sealing.keys)
                sealed = dict(data)
            aad = sealing.aad(key_id, event_type, name)
            envelope = _seal(aead, key_id, aad, data[name], sealing.nonce())
            sealed[name] = envelope
            if texts is not None:
                texts[name] = envelope_text(envelope)
        return data if sealed is None else sealed

    def _active(
        self,
        fields: PersonalFields,
        aggregate_id: uuid.UUID | str,
        data: Mapping[str, Any],
        memo: dict[object, tuple[str, AESGCM]],
    ) -> tuple[str, AESGCM]:
        by_stream = fields.subject is None
        found = memo.get(aggregate_id) if by_stream else None
        if found is None:
            subject = fields.subject_of(aggregate_id, data)
            found = memo.get(subject)
            if found is None:
                found = self.keyring.active(subject)
            memo[subject] = found
            if by_stream:
                memo[aggregate_id] = found
        return found

    def key_ids(self, event_type: str, data: Mapping[str, Any]) -> set[str]:
        """Return the data keys the event's envelopes name."""
        fields = self.declared.get(event_type)
        if fields is None:
            return set()
        found = {envelope_key_id(data[name]) for name in fields.fields if name in data}
        found.discard(None)
        return found

    def keys_for(self, events: Iterable[Any]) -> dict[str, AESGCM | None]:
        """Look up, in one call to the key ring, the keys of every envelope of `events` (stored
        events or anything with `event_type` and `data`)."""
        wanted: set[str] = set()
        for event in events:
            if event.event_type in self.declared:
                wanted |= self.key_ids(event.event_type, event.data)
        return self.keyring.lookup(wanted) if wanted else {}

    def open(
        self, event_type: str, data: dict, keys: Mapping[str, AESGCM | None] | None = None
    ) -> dict:
        """Return `data` with its envelopes opened, or read as erased where the key is gone.

        `keys` comes from `keys_for` over a batch; without it the key ring is asked now.
        """
        fields = self.declared.get(event_type)
        if fields is None:
            return data
        names = [name for name in fields.fields if name in data and is_envelope(data[name])]
        if not names:
            return data
        if keys is None:
            keys = self.keyring.lookup(self.key_ids(event_type, data))
        opened = dict(data)
        for name in names:
            key_id = envelope_key_id(data[name])
            if key_id is None:
                raise PersonalDataError(
                    f"the personal field {name!r} of a {event_type} holds a damaged envelope"
                )
            if key_id not in keys:
                raise PersonalDataError(
                    f"the personal field {name!r} of a {event_type} names the data key "
                    f"{key_id!r}, which this store never had"
                )
            aead = keys[key_id]
            if aead is None:
                opened[name] = fields.erased
            else:
                opened[name] = open_value(aead, data[name], event_type, name)
        return opened

    def erased_keys(self, event_type: str, data: Mapping[str, Any],
                    keys: Mapping[str, AESGCM | None]) -> set[str]:  # fmt: skip
        """Return the keys of the event's envelopes that are destroyed."""
        return {key_id for key_id in self.key_ids(event_type, data) if keys.get(key_id, 0) is None}


class InMemoryKeyRing:
    """Data keys in a dict: for tests and for stores kept in memory."""

    def __init__(self) -> None:
        self.subjects: dict[str, str] = {}
        self.keys: dict[str, bytes | None] = {}

    def active(self, subject: str) -> tuple[str, AESGCM]:
        key_id = self.subjects.get(subject)
        if key_id is None:
            key_id = str(uuid.uuid4())
            self.subjects[subject], self.keys[key_id] = key_id, new_data_key()
        key = self.keys[key_id]
        if key is None:
            raise ForgottenSubject(subject)
        return key_id, AESGCM(key)

    def lookup(self, key_ids: Collection[str]) -> dict[str, AESGCM | None]:
        found = {}
        for key_id in key_ids:
            if key_id in self.keys:
                key = self.keys[key_id]
                found[key_id] = None if key is None else AESGCM(key)
        return found

    def forget(self, subject: str) -> None:
        key_id = self.subjects.get(subject)
        if key_id is not None:
            self.keys[key_id] = None


_installed: Cipher | None = None


def install(cipher: Cipher | None) -> None:
    """Make `cipher` what mappers open personal fields with when given none (the app's
    wiring installs one on its default database)."""
    global _installed
    _installed = cipher


def installed() -> Cipher | None:
    return _installed
