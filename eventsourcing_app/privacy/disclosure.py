"""What a page or an API answer shows of events' personal fields: the values it can open, the
record of each erasure (when, by whom, why), or why they cannot be opened; with the keys of a
page looked up once for the page."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from eventsourcing_app.core.mapper import EventMapper
from eventsourcing_app.core.personal import Cipher, PersonalDataError, envelope_key_id, is_envelope
from eventsourcing_app.core.records import StoredEvent
from eventsourcing_app.models import PersonalDataKey

__all__ = ["Disclosure", "PersonalKeys", "personal_keys"]


@dataclass
class Disclosure:
    """What a page shows of one event's personal fields: those it can open, with their values;
    the record of each destroyed key they were sealed with; or why they cannot be opened."""

    opened: dict[str, Any] = field(default_factory=dict)
    erasures: list[PersonalDataKey] = field(default_factory=list)
    erased: bool = False  # a key is destroyed, recorded or not
    problem: str = ""
    data: dict[str, Any] | None = None  # all the data, opened or read as erased (no problem)

    def __bool__(self) -> bool:
        return bool(self.opened or self.erased or self.problem)


@dataclass
class PersonalKeys:
    """The data keys that a page's events name, looked up once for the page, and the record of
    each destroyed one (when its subject was forgotten, by whom and why).

    `subject` is the record of the stream's own data subject when it was forgotten. `problem`
    says why the keys could not be read (no master key...): every card then shows it.
    """

    cipher: Cipher | None
    keys: dict[str, Any] = field(default_factory=dict)
    forgotten: dict[str, PersonalDataKey] = field(default_factory=dict)  # by key id
    subject: PersonalDataKey | None = None
    problem: str = ""
    _asked: set[str] = field(default_factory=set, init=False, repr=False)

    def disclose(self, event_type: str, data: Any) -> Disclosure:
        """Return what the page shows of the event's personal fields (nothing if it has none)."""
        names = self.sealed_names(event_type, data)
        if not names:
            return Disclosure()
        key_ids = self.cipher.key_ids(event_type, data)
        erasures = [self.forgotten[key_id] for key_id in sorted(key_ids & set(self.forgotten))]
        erased = bool(erasures) or any(self.keys.get(key_id, 0) is None for key_id in key_ids)
        if self.problem and not key_ids <= set(self.keys):  # only destroyed keys need no look-up
            return Disclosure(erasures=erasures, erased=erased, problem=self.problem)
        try:
            opened = self.cipher.open(event_type, data, self.keys)
        except PersonalDataError as exc:
            return Disclosure(erasures=erasures, erased=erased, problem=str(exc))
        shown = {name: opened[name] for name in names
                 if self.keys.get(envelope_key_id(data[name])) is not None}  # fmt: skip
        return Disclosure(shown, erasures, erased, data=opened)

    def keys_of(self, stored: StoredEvent) -> Mapping[str, Any] | None:
        """The keys to replay `stored` with: the page's, and any its envelopes name beyond them
        (an event before the page), looked up once each."""
        if not self.sealed_names(stored.event_type, stored.data):
            return self.keys
        missing = self.cipher.key_ids(stored.event_type, stored.data) - set(self.keys) - self._asked
        if missing and self.problem:
            raise PersonalDataError(self.problem)
        if missing:
            self._asked |= missing
            self.keys.update(self.cipher.keyring.lookup(missing))
        return self.keys

    def sealed_names(self, event_type: str, data: Any) -> list[str]:
        """The event's declared personal fields that hold an envelope."""
        fields = self.cipher.declared.get(event_type) if self.cipher is not None else None
        if fields is None or not isinstance(data, dict):
            return []
        return [name for name in fields.fields if is_envelope(data.get(name))]


def personal_keys(
    mapper: EventMapper,
    events: Iterable[tuple[str, Any]],
    using: str = "default",
    stream: uuid.UUID | None = None,
) -> PersonalKeys:
    """Look up the keys of the envelopes of `events` (pairs of event type and data as stored)
    in one call to the key ring, and the records of the destroyed ones, and of the `stream`'s
    own subject, in one query."""
    found = PersonalKeys(mapper.cipher)
    if found.cipher is None:
        return found
    named: set[str] = set()
    for event_type, data in events:
        if found.sealed_names(event_type, data):
            named |= found.cipher.key_ids(event_type, data)
    try:
        found.keys = dict(found.cipher.keyring.lookup(named)) if named else {}
    except PersonalDataError as exc:
        found.problem = str(exc)
    wanted = Q(key_id__in=[key_id for key_id in named if _is_uuid(key_id)])
    if stream is not None:
        wanted |= Q(subject=str(stream))
    if named or stream is not None:
        records = (
            PersonalDataKey.objects.using(using)
            .filter(wanted, forgotten_at__isnull=False)
            .only("key_id", "subject", "forgotten_at", "forgotten_by", "reason")
        )
        for record in records:
            found.forgotten[str(record.key_id)] = record
            found.keys.setdefault(str(record.key_id), None)  # forgotten: the key is destroyed
            later = found.subject is None or record.forgotten_at > found.subject.forgotten_at
            if stream is not None and record.subject == str(stream) and later:
                found.subject = record
    return found


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
