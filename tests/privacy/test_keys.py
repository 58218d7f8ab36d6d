"""The master key: made by a command, checked at start-up, rotated without downtime; data keys
unwrapped once per process, in a bounded cache."""

import os
import stat
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from bankdemo import services
from bankdemo.domain import BankAccount
from eventsourcing_app.checks import check_personal_data_key
from eventsourcing_app.core.personal import PersonalDataError
from eventsourcing_app.models import PersonalDataKey
from eventsourcing_app.privacy import masterkey
from eventsourcing_app.privacy.keyring import UnwrappedKeys, unwrapped_keys
from eventsourcing_app.wiring import get_repository

OWNER = "Octavia Brightwater-Kim"


def keygen(path) -> str:
    out = StringIO()
    call_command("personal_data_keygen", str(path), stdout=out)
    return out.getvalue()


def test_keygen_writes_a_key_only_its_owner_reads_and_never_overwrites(tmp_path):
    path = tmp_path / "keys" / "master"
    said = keygen(path)
    key = masterkey.parse(path.read_bytes(), str(path))
    assert f"master key id {masterkey.key_id(key)}" in said
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(CommandError, match="never overwritten"):
        keygen(path)
    call_command("personal_data_keygen", str(path), "--if-missing", stdout=StringIO())
    assert masterkey.parse(path.read_bytes(), str(path)) == key


def test_the_check_names_a_missing_or_broken_master_key(monkeypatch, tmp_path, settings):
    assert check_personal_data_key() == []
    monkeypatch.delenv("PERSONAL_DATA_KEY")
    assert [m.id for m in check_personal_data_key()] == ["eventsourcing.W002"]
    monkeypatch.setenv("PERSONAL_DATA_KEY", "c2hvcnQ=")
    [error] = check_personal_data_key()
    assert error.id == "eventsourcing.E006"
    assert "has 5 bytes; it needs 32" in error.msg
    retired = tmp_path / "retired"
    retired.write_text("not base64 !")
    monkeypatch.setenv("PERSONAL_DATA_KEY", masterkey.generate().decode())
    settings.EVENTSOURCING = {**settings.EVENTSOURCING,
                              "PERSONAL_DATA_RETIRED_KEY_FILES": [str(retired)]}  # fmt: skip
    assert [m.id for m in check_personal_data_key()] == ["eventsourcing.E006"]


@pytest.mark.django_db
def test_rotation_rewraps_every_live_key_and_the_data_reads_throughout(
    monkeypatch, tmp_path, settings
):
    old_file, new_file = tmp_path / "old", tmp_path / "new"
    old_file.write_bytes(os.environ["PERSONAL_DATA_KEY"].encode())
    keygen(new_file)
    accounts = [services.account_open(owner=f"{OWNER} {n}", currency="EUR")[0].id
                for n in range(3)]  # fmt: skip
    old_id = masterkey.current()[0]

    # Step 1: the new key is current, the old one retired: both read.
    monkeypatch.delenv("PERSONAL_DATA_KEY")
    monkeypatch.setenv("PERSONAL_DATA_KEY_FILE", str(new_file))
    settings.EVENTSOURCING = {**settings.EVENTSOURCING,
                              "PERSONAL_DATA_RETIRED_KEY_FILES": [str(old_file)]}  # fmt: skip
    new_id = masterkey.current()[0]
    assert new_id != old_id
    later = services.account_open(owner=f"{OWNER} later", currency="EUR")[0].id
    assert PersonalDataKey.objects.get(subject=str(later)).master_key_id == new_id
    assert get_repository(BankAccount).load(accounts[0]).owner == f"{OWNER} 0"

    # Step 2: rotate.
    out = StringIO()
    call_command("rotate_master_key", stdout=out)
    assert f"master key {new_id}: re-wrapped 3 data key(s), 3 from {old_id}; 1 already" in (
        out.getvalue()
    )
    assert set(PersonalDataKey.objects.values_list("master_key_id", flat=True)) == {new_id}

    # Step 3: the old key goes; everything still reads.
    settings.EVENTSOURCING = {**settings.EVENTSOURCING, "PERSONAL_DATA_RETIRED_KEY_FILES": []}
    unwrapped_keys().limit, saved = 0, unwrapped_keys().limit  # no cached key helps
    try:
        for number, account in enumerate(accounts):
            assert get_repository(BankAccount).load(account).owner == f"{OWNER} {number}"
    finally:
        unwrapped_keys().limit = saved

    # And a process still on the old key alone is told which key it lacks.
    monkeypatch.delenv("PERSONAL_DATA_KEY_FILE")
    monkeypatch.setenv("PERSONAL_DATA_KEY", old_file.read_text())
    unwrapped_keys().drop(str(PersonalDataKey.objects.get(subject=str(accounts[1])).key_id))
    with pytest.raises(PersonalDataError, match=f"wrapped by the master key {new_id}"):
        get_repository(BankAccount).load(accounts[1])


@pytest.mark.django_db
def test_a_data_key_altered_in_its_row_does_not_unwrap():
    account = services.account_open(owner=OWNER, currency="EUR")[0].id
    key = PersonalDataKey.objects.get(subject=str(account))
    altered = bytearray(bytes(key.wrapped_key))
    altered[0] ^= 1
    PersonalDataKey.objects.filter(pk=key.pk).update(wrapped_key=bytes(altered))
    with pytest.raises(PersonalDataError, match="does not unwrap"):
        get_repository(BankAccount).load(account)


def test_the_cache_of_unwrapped_keys_is_bounded():
    cache = UnwrappedKeys(limit=2)
    master_id, _ = masterkey.current()
    wrapped = [masterkey.wrap(os.urandom(32))[1] for _ in range(3)]
    for number, value in enumerate(wrapped):
        cache.get(f"k{number}", master_id, value)
    assert len(cache) == 2
    cache.drop("k2")
    assert len(cache) == 1
