"""Data subjects' keys in the `personal_data_keys` table of a Django database.

Opening reads the key's row every time, so no process opens a value after another destroyed
its key; what a process keeps for that (bounded, least recently used first) is the unwrapped
key for a wrapped one it has seen, which spares the unwrap, never the read. Sealing keeps a
subject's key for a few seconds (`SealingKeys`).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Collection

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import connections, transaction
from django.utils import timezone

from eventsourcing_app import conf
from eventsourcing_app.core.personal import ForgottenSubject, new_data_key
from eventsourcing_app.models import PersonalDataKey
from eventsourcing_app.privacy import masterkey

TABLE = PersonalDataKey._meta.db_table
CHUNK = 500  # key ids per look-up query: well inside SQLite's parameter limit


class UnwrappedKeys:
    """Unwrapped data keys by (key id, wrapped bytes), bounded; shared by a process's rings."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._keys: OrderedDict[tuple[str, bytes], AESGCM] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key_id: str, master_id: str, wrapped: bytes) -> AESGCM:
        entry = (key_id, bytes(wrapped))
        with self._lock:
            aead = self._keys.get(entry)
            if aead is not None:
                self._keys.move_to_end(entry)
                return aead
        aead = AESGCM(masterkey.unwrap(master_id, wrapped))
        with self._lock:
            self._keys[entry] = aead
            while len(self._keys) > self.limit:
                self._keys.popitem(last=False)
        return aead

    def drop(self, key_id: str) -> None:
        with self._lock:
            for entry in [entry for entry in self._keys if entry[0] == key_id]:
                del self._keys[entry]

    def __len__(self) -> int:
        return len(self._keys)


class SealingKeys:
    """Subjects' keys to seal with, for a few seconds each, bounded; dropped on erasure."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit, self.seconds = limit, seconds
        self._keys: OrderedDict[tuple[str, str], tuple[float, tuple[str, AESGCM]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, using: str, subject: str) -> tuple[str, AESGCM] | None:
        with self._lock:
            entry = self._keys.get((using, subject))
            if entry is None or entry[0] < time.monotonic():
                return None
            return entry[1]

    def put(self, using: str, subject: str, key: tuple[str, AESGCM]) -> None:
        if self.seconds <= 0:
            return
        with self._lock:
            self._keys[(using, subject)] = (time.monotonic() + self.seconds, key)
            self._keys.move_to_end((using, subject))
            while len(self._keys) > self.limit:
                self._keys.popitem(last=False)

    def drop(self, using: str, subject: str) -> None:
        with self._lock:
            self._keys.pop((using, subject), None)


_unwrapped: UnwrappedKeys | None = None
_sealing: SealingKeys | None = None


def sealing_keys() -> SealingKeys:
    global _sealing
    if _sealing is None:
        _sealing = SealingKeys(
            conf.get("PERSONAL_DATA_KEY_CACHE"), float(conf.get("PERSONAL_DATA_SEAL_KEY_SECONDS"))
        )
    return _sealing


def unwrapped_keys() -> UnwrappedKeys:
    global _unwrapped
    if _unwrapped is None:
        _unwrapped = UnwrappedKeys(conf.get("PERSONAL_DATA_KEY_CACHE"))
    return _unwrapped


class DjangoKeyRing:
    """The `KeyRing` of the core, on the Django database `using`."""

    def __init__(self, using: str = "default") -> None:
        self.using = using

    @property
    def connection(self):
        return connections[self.using]

    def _key(self, value: str | uuid.UUID):
        value = value if isinstance(value, uuid.UUID) else uuid.UUID(value)
        return value if self.connection.features.has_native_uuid_field else value.hex

    def _fetch(self, sql: str, params: list) -> list[tuple]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def active(self, subject: str) -> tuple[str, AESGCM]:
        """Return the subject's newest key, made now if they have none; refuse a forgotten
        subject (forgetting destroys every key of theirs).

        A key to seal with is kept for `PERSONAL_DATA_SEAL_KEY_SECONDS` (a read per append
        would cost a round trip each). Sealing under a key another process destroyed within
        that time exposes nothing, since the value is unreadable from the start; opening
        always reads the key's row.
        """
        cached = sealing_keys().get(self.using, subject)
        if cached is not None:
            return cached
        found, made = self._active(subject)
        if made:  # kept once its row is committed: a rolled-back append must not leave it
            transaction.on_commit(lambda: sealing_keys().put(self.using, subject, found),
                                  using=self.using)  # fmt: skip
        else:
            sealing_keys().put(self.using, subject, found)
        return found

    def _active(self, subject: str) -> tuple[tuple[str, AESGCM], bool]:
        rows = self._fetch(
            f"SELECT key_id, wrapped_key, master_key_id FROM {TABLE} WHERE subject = %s "
            "ORDER BY created_at DESC LIMIT 1",
            [subject],
        )
        if not rows:
            return self._create(subject), True
        key_id, wrapped, master_id = rows[0]
        if wrapped is None:
            raise ForgottenSubject(subject)
        key_id = str(key_id if isinstance(key_id, uuid.UUID) else uuid.UUID(key_id))
        return (key_id, unwrapped_keys().get(key_id, master_id, wrapped)), False

    def _create(self, subject: str) -> tuple[str, AESGCM]:
        # Two writers making a new subject's first key at once each make one: both seal, and
        # forgetting the subject destroys both.
        data_key, key_id = new_data_key(), uuid.uuid4()
        master_id, wrapped = masterkey.wrap(data_key)
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {TABLE} (key_id, subject, wrapped_key, master_key_id, created_at, "
                "forgotten_by, reason) VALUES (%s, %s, %s, %s, %s, '', '')",
                [self._key(key_id), subject, wrapped, master_id, _now(self.connection)],
            )
        return str(key_id), AESGCM(data_key)

    def lookup(self, key_ids: Collection[str]) -> dict[str, AESGCM | None]:
        """Return the keys named, None for each destroyed one; unknown ids are left out."""
        found: dict[str, AESGCM | None] = {}
        wanted = []
        for key_id in key_ids:
            try:
                wanted.append(self._key(key_id))
            except (ValueError, AttributeError, TypeError):
                continue  # not a key id: an altered envelope, which opening reports
        cache = unwrapped_keys()
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            marks = ", ".join(["%s"] * len(chunk))
            rows = self._fetch(
                f"SELECT key_id, wrapped_key, master_key_id FROM {TABLE} WHERE key_id IN ({marks})",
                chunk,
            )
            for key_id, wrapped, master_id in rows:
                name = str(key_id if isinstance(key_id, uuid.UUID) else uuid.UUID(key_id))
                found[name] = None if wrapped is None else cache.get(name, master_id, wrapped)
        return found


def _now(connection):
    return connection.ops.adapt_datetimefield_value(timezone.now())


def rewrap(using: str = "default", batch_size: int = CHUNK) -> dict[str, int]:
    """Wrap every live data key under the current master key; return the keys counted by the
    master key that wrapped them before (the current one's count: those already under it).

    One transaction: a reader sees every key under the old master key or under the new one,
    both of which it can unwrap while the old one is listed as retired.
    """
    current_id, _ = masterkey.current()
    before: dict[str, int] = {}
    with transaction.atomic(using=using):
        rows = (
            PersonalDataKey.objects.using(using)
            .select_for_update()
            .filter(wrapped_key__isnull=False)
            .order_by("pk")
        )
        for key in rows.iterator(chunk_size=batch_size):
            before[key.master_key_id] = before.get(key.master_key_id, 0) + 1
            if key.master_key_id == current_id:
                continue
            data_key = masterkey.unwrap(key.master_key_id, key.wrapped_key)
            master_id, wrapped = masterkey.wrap(data_key)
            PersonalDataKey.objects.using(using).filter(pk=key.pk).update(
                wrapped_key=wrapped, master_key_id=master_id
            )
    return before
