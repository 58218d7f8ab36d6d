"""Personal fields are sealed on append and opened on read: the rows hold envelopes only, the
chains cover them, and the domain, projections and pages get the values back."""

import base64
import binascii
import json
import uuid

import pytest
from django.db import transaction

from bankdemo import services
from bankdemo.domain import BankAccount
from bankdemo.models import AccountBalance
from eventsourcing_app.core.errors import InvalidAppend
from eventsourcing_app.core.hashchain import canonical_json, fast_canonical_object
from eventsourcing_app.core.memory import InMemoryRecorder
from eventsourcing_app.core.personal import (
    ENVELOPE,
    ERASED,
    NONCE_BYTES,
    Cipher,
    Declarations,
    ForgottenSubject,
    InMemoryKeyRing,
    PersonalDataError,
    Sealing,
    envelope_key_id,
    envelope_parts,
    envelope_text,
    is_envelope,
    personal_data,
)
from eventsourcing_app.core.records import NO_STREAM, NewEvent
from eventsourcing_app.core.store import EventStore
from eventsourcing_app.core.verification import verify_chains
from eventsourcing_app.models import Event, PersonalDataKey
from eventsourcing_app.privacy import masterkey
from eventsourcing_app.privacy.keyring import unwrapped_keys
from eventsourcing_app.wiring import get_event_store, get_recorder, get_repository

OWNER = "Ada Quirinus Lovelace"


@pytest.fixture
def cipher():
    declared = Declarations()
    declared.declare("test.Signed", personal_data("name", "address"))
    declared.declare("test.ByField", personal_data("name", subject="customer"))
    return Cipher(InMemoryKeyRing(), declared)


def test_a_sealed_field_is_an_envelope_and_opens_again(cipher):
    stream = uuid.uuid4()
    data = {"name": OWNER, "address": {"city": "London"}, "plan": "gold"}
    sealed = cipher.seal("test.Signed", stream, data)
    assert sealed["plan"] == "gold"
    for name in ("name", "address"):
        assert is_envelope(sealed[name])
        assert sealed[name].startswith(f"{ENVELOPE}:1:")
        assert OWNER not in json.dumps(sealed)
    assert envelope_key_id(sealed["name"]) == envelope_key_id(sealed["address"]) is not None
    assert cipher.open("test.Signed", sealed) == data
    assert cipher.seal("test.Other", stream, data) is data  # undeclared: untouched


def test_an_envelope_moved_to_another_field_or_type_does_not_open(cipher):
    sealed = cipher.seal("test.Signed", uuid.uuid4(), {"name": OWNER, "address": "x"})
    swapped = {"name": sealed["address"], "address": sealed["name"]}
    with pytest.raises(PersonalDataError, match="altered or belongs elsewhere"):
        cipher.open("test.Signed", swapped)
    key_id, text = envelope_parts(sealed["name"])
    raw = bytearray(base64.b64decode(text))
    raw[-1] ^= 1
    flipped = f"{ENVELOPE}:1:{key_id}:{base64.b64encode(bytes(raw)).decode()}"
    with pytest.raises(PersonalDataError, match="altered or belongs elsewhere"):
        cipher.open("test.Signed", {"name": flipped})
    for damaged in (f"{ENVELOPE}:1:{key_id}", f"{ENVELOPE}:1:{key_id}:a:b", f"{ENVELOPE}:2:a:b",
                    f"{ENVELOPE}:1::{text}", f"{ENVELOPE}:"):  # fmt: skip
        with pytest.raises(PersonalDataError, match="damaged envelope"):
            cipher.open("test.Signed", {"name": damaged})


def test_the_object_form_of_earlier_stores_still_opens(cipher):
    stream = uuid.uuid4()
    sealed = cipher.seal("test.Signed", stream, {"name": OWNER})
    earlier = {"name": {ENVELOPE: sealed["name"].removeprefix(f"{ENVELOPE}:")}}
    assert is_envelope(earlier["name"])
    assert envelope_key_id(earlier["name"]) == envelope_key_id(sealed["name"])
    assert cipher.open("test.Signed", earlier) == {"name": OWNER}
    cipher.keyring.forget(str(stream))
    assert cipher.open("test.Signed", earlier) == {"name": ERASED}


def test_a_value_that_looks_like_an_envelope_is_sealed_like_any_other(cipher):
    theirs = cipher.seal("test.Signed", uuid.uuid4(), {"name": OWNER})["name"]
    mine = cipher.seal("test.Signed", uuid.uuid4(), {"name": theirs})
    assert is_envelope(mine["name"])
    assert mine["name"] != theirs
    assert envelope_key_id(mine["name"]) != envelope_key_id(theirs)
    assert cipher.open("test.Signed", mine) == {"name": theirs}  # their name stays sealed


def test_the_store_s_canonical_text_of_an_envelope_is_the_walked_one(cipher):
    texts: dict[str, str] = {}
    data = {"name": OWNER, "address": ["a", 1], "plan": "gold", "n": 30}
    sealed = cipher.seal("test.Signed", uuid.uuid4(), data, Sealing(), texts)
    assert set(texts) == {"name", "address"}
    for name, text in texts.items():
        assert text == envelope_text(sealed[name]) == canonical_json(sealed[name])
    assert fast_canonical_object(sealed, texts) == canonical_json(sealed)


def test_a_forgotten_subject_reads_as_erased_and_takes_no_new_data(cipher):
    stream = uuid.uuid4()
    sealed = cipher.seal("test.Signed", stream, {"name": OWNER})
    cipher.keyring.forget(str(stream))
    assert cipher.open("test.Signed", sealed) == {"name": ERASED}
    with pytest.raises(ForgottenSubject):
        cipher.seal("test.Signed", stream, {"name": "again"})


def test_the_subject_can_be_a_field_of_the_data(cipher):
    one = cipher.seal("test.ByField", uuid.uuid4(), {"name": OWNER, "customer": "c-1"})
    two = cipher.seal("test.ByField", uuid.uuid4(), {"name": "Other", "customer": "c-1"})
    assert envelope_key_id(one["name"]) == envelope_key_id(two["name"])
    with pytest.raises(InvalidAppend, match="subject field 'customer' is empty"):
        cipher.seal("test.ByField", uuid.uuid4(), {"name": OWNER})


def test_the_store_hashes_the_envelope_and_gives_projections_the_value(cipher):
    seen = []
    store = EventStore(InMemoryRecorder(), cipher=cipher, after_append=seen.extend)
    stream = uuid.uuid4()
    stored = store.append(stream, [NewEvent("test.Signed", {"name": OWNER})],
                          expected_version=NO_STREAM, aggregate_type="test.Thing")  # fmt: skip
    assert is_envelope(stored[0].data["name"])
    assert seen[0].data == {"name": OWNER}  # inline projections: the value, as given
    assert seen[0].hash == stored[0].hash
    assert verify_chains(store.recorder).intact  # the hash covers what is stored
    read = next(store.read_stream(stream))
    assert read.data == stored[0].data


def test_every_seal_of_an_append_has_a_nonce_of_its_own(cipher):
    """Nonces are drawn in blocks (`Sealing`): an append of more fields than a block holds,
    and the next append, still never repeat one under a key."""
    store = EventStore(InMemoryRecorder(), cipher=cipher)
    count = 3 * Sealing.NONCE_BLOCK + 1
    events = [NewEvent("test.Signed", {"name": f"{OWNER} {n}", "address": str(n)})
              for n in range(count)]  # fmt: skip
    stream = uuid.uuid4()
    stored = store.append(stream, events, expected_version=NO_STREAM, aggregate_type="test.Thing")
    stored += store.append(stream, events, expected_version=count, aggregate_type="test.Thing")
    nonces = [
        binascii.a2b_base64(envelope_parts(event.data[name])[1])[:NONCE_BYTES]
        for event in stored
        for name in ("name", "address")
    ]
    assert len(nonces) == 4 * count
    assert len(set(nonces)) == len(nonces)
    opened = [cipher.open("test.Signed", event.data) for event in stored]
    assert opened == [event.data for event in events] * 2


@pytest.mark.django_db
def test_an_account_s_owner_is_stored_sealed_and_read_back_everywhere():
    account, _ = services.account_open(owner=OWNER, currency="EUR")
    row = Event.objects.get(aggregate_id=account.id, version=1)
    assert OWNER not in json.dumps(row.event_data) + json.dumps(row.metadata)
    assert is_envelope(row.event_data["owner"])
    assert row.event_data["currency"] == "EUR"  # only the declared field is sealed
    key = PersonalDataKey.objects.get(subject=str(account.id))
    assert str(key.key_id) == envelope_key_id(row.event_data["owner"])
    assert key.master_key_id == masterkey.current()[0]
    assert len(bytes(key.wrapped_key)) == 40  # a 32-byte key, wrapped (RFC 3394)
    assert verify_chains(get_recorder()).intact
    assert get_repository(BankAccount).load(account.id).owner == OWNER
    assert AccountBalance.objects.get(account_id=account.id).owner == OWNER


@pytest.mark.django_db
def test_an_account_s_key_is_made_once_and_used_for_its_every_sealed_field():
    account, _ = services.account_open(owner=OWNER, currency="EUR")
    assert PersonalDataKey.objects.count() == 1
    services.account_deposit(account_id=account.id, amount="5.00")
    assert PersonalDataKey.objects.count() == 1  # a deposit has no personal field


@pytest.mark.django_db
def test_without_a_master_key_personal_data_is_refused_with_what_to_do(monkeypatch):
    monkeypatch.delenv("PERSONAL_DATA_KEY")
    with pytest.raises(PersonalDataError, match="personal_data_keygen"):
        services.account_open(owner=OWNER, currency="EUR")
    assert not Event.objects.exists()
    assert not PersonalDataKey.objects.exists()


@pytest.mark.usefixtures("log_db")
def test_a_key_made_in_an_append_that_rolled_back_is_not_used_again():
    """The key's row goes with the failed append; the next append makes a key that exists."""
    store = get_event_store()
    stream = uuid.uuid4()
    opened = NewEvent("bank.AccountOpened", {"owner": OWNER, "currency": "EUR",
                                             "overdraft_limit": "0"})  # fmt: skip

    def failing_command():
        with transaction.atomic():
            store.append(stream, [opened], expected_version=NO_STREAM,
                         aggregate_type="bank.Account")  # fmt: skip
            raise RuntimeError("the command failed after its append")

    with pytest.raises(RuntimeError):
        failing_command()
    assert not PersonalDataKey.objects.exists()
    store.append(stream, [opened], expected_version=NO_STREAM, aggregate_type="bank.Account")
    kid = envelope_key_id(Event.objects.get(aggregate_id=stream).event_data["owner"])
    assert PersonalDataKey.objects.filter(key_id=kid).exists()
    assert get_repository(BankAccount).load(stream).owner == OWNER


@pytest.mark.django_db
def test_reading_without_the_master_key_names_the_event_and_what_to_do(monkeypatch):
    account, _ = services.account_open(owner=OWNER, currency="EUR")
    key = PersonalDataKey.objects.get(subject=str(account.id))
    unwrapped_keys().drop(str(key.key_id))
    monkeypatch.delenv("PERSONAL_DATA_KEY")
    with pytest.raises(PersonalDataError, match="personal_data_keygen") as caught:
        get_repository(BankAccount).load(account.id)
    assert f"(event v1 of bank.Account {account.id})" in str(caught.value)
