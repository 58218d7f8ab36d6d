"""The ledger follower and `ledger_digest` seal the log into an RFC 9162 tree, once, in order."""

import hashlib
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from eventsourcing_app.core.records import NO_STREAM
from eventsourcing_app.ledger import digests, keys, merkle
from eventsourcing_app.ledger.proofs import consistency_proof, inclusion_proof
from eventsourcing_app.ledger.sealer import NAME, seal_now
from eventsourcing_app.ledger.tree import LedgerTree
from eventsourcing_app.models import Event, LedgerDigest, LedgerLeaf, LedgerNode
from eventsourcing_app.projections.worker import ProjectionWorker
from eventsourcing_app.wiring import get_event_store
from tests.helpers import deposits, new_id


def reference_root(entries: list[bytes]) -> bytes:
    """MTH from RFC 9162 2.1.1, written out here so that the app's code is not its own judge."""
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = 1
    while k * 2 < len(entries):
        k *= 2
    return hashlib.sha256(
        b"\x01" + reference_root(entries[:k]) + reference_root(entries[k:])
    ).digest()


def log_hashes() -> list[bytes]:
    return [
        h.encode()
        for h in Event.objects.order_by("transaction_id", "id").values_list("hash", flat=True)
    ]


def append_streams(count: int, events_each: int) -> list:
    store = get_event_store()
    ids = [new_id() for _ in range(count)]
    for aggregate_id in ids:
        amounts = [f"{n}.00" for n in range(1, events_each + 1)]
        store.append(aggregate_id, deposits(*amounts), expected_version=NO_STREAM,
                     aggregate_type="ledger.Account")  # fmt: skip
    return ids


def test_a_digest_seals_the_rfc_9162_root_of_the_log(log_db):
    append_streams(5, 7)
    digest = seal_now(get_event_store())
    assert digest.tree_size == 35 == LedgerLeaf.objects.count()
    assert digest.root == reference_root(log_hashes())
    last = Event.objects.order_by("transaction_id", "id").last()
    assert digest.last_position == str(last.position)
    assert digest.algorithm == "rfc9162-sha256"
    assert digests.signature_valid(digest, keys.public_key())
    assert LedgerDigest.objects.count() == 1


def test_the_empty_log_has_the_empty_root(log_db):
    digest = seal_now(get_event_store())
    assert digest.tree_size == 0
    assert digest.root_hash == hashlib.sha256(b"").hexdigest()


def test_sealing_continues_where_it_stopped_and_never_rewrites(log_db):
    append_streams(3, 5)
    first = seal_now(get_event_store())
    leaves_before = list(
        LedgerLeaf.objects.order_by("leaf_index").values_list("leaf_index", "hash")
    )
    append_streams(4, 3)
    second = seal_now(get_event_store())
    assert (first.tree_size, second.tree_size) == (15, 27)
    assert second.root == reference_root(log_hashes())
    leaves_after = list(LedgerLeaf.objects.order_by("leaf_index").values_list("leaf_index", "hash"))
    assert leaves_after[:15] == leaves_before
    proof = consistency_proof(15, 27)
    path = [bytes.fromhex(h) for h in proof["path"]]
    assert merkle.verify_consistency(15, 27, path, first.root, second.root)


def test_the_follower_in_run_projections_seals_in_batches(log_db, settings):
    settings.EVENTSOURCING = {**settings.EVENTSOURCING, "LEDGER_BATCH_SIZE": 4,
                              "LEDGER_DIGEST_EVERY": {"events": 10, "seconds": 3600}}  # fmt: skip
    append_streams(3, 5)
    worker = ProjectionWorker([], get_event_store(), ledger=True)
    assert worker.names == [NAME]
    assert worker.run_once() == 15
    assert LedgerTree().size() == 15
    # the first digest with the first batch, then one whenever ten events came since the last
    assert sizes() == [4, 15]
    assert LedgerTree().root(15) == reference_root(log_hashes())
    assert worker.run_once() == 0
    append_streams(1, 9)
    assert worker.run_once() == 9
    assert sizes() == [4, 15]
    append_streams(1, 1)
    assert worker.run_once() == 1
    assert sizes() == [4, 15, 25]


def sizes() -> list[int]:
    return list(LedgerDigest.objects.order_by("id").values_list("tree_size", flat=True))


def test_a_digest_is_due_after_the_seconds_even_without_new_events(log_db, settings):
    settings.EVENTSOURCING = {**settings.EVENTSOURCING,
                              "LEDGER_DIGEST_EVERY": {"events": 1000, "seconds": 0}}  # fmt: skip
    append_streams(1, 3)
    seal_now(get_event_store())
    append_streams(1, 2)
    worker = ProjectionWorker([], get_event_store(), ledger=True)
    worker.run_once()
    assert LedgerDigest.objects.order_by("-id").first().tree_size == 5
    worker.run_once()  # nothing new: no new digest
    assert LedgerDigest.objects.count() == 2


def test_digest_files_leave_the_database(
    log_db, settings, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    settings.EVENTSOURCING = {**settings.EVENTSOURCING, "LEDGER_DIGEST_DIR": str(tmp_path)}
    monkeypatch.delenv("LEDGER_DIGEST_DIR")
    append_streams(1, 2)
    with django_capture_on_commit_callbacks(execute=True):
        digest = seal_now(get_event_store())
    files = list(tmp_path.glob("digest-*.json"))
    assert len(files) == 1
    assert json.loads(files[0].read_text()) == digest.as_dict()


def test_inclusion_proofs_verify_against_the_digest(log_db):
    append_streams(6, 5)
    digest = seal_now(get_event_store())
    for event in Event.objects.order_by("transaction_id", "id"):
        proof = inclusion_proof(event.position, digest.tree_size)
        assert proof["event_hash"] == event.hash
        leaf = merkle.leaf_hash(event.hash.encode("ascii"))
        assert proof["leaf_hash"] == leaf.hex()
        path = [bytes.fromhex(h) for h in proof["audit_path"]]
        assert merkle.verify_inclusion(proof["leaf_index"], digest.tree_size, leaf, path,
                                       digest.root)  # fmt: skip


def test_ledger_digest_prints_and_writes_the_digest(log_db, tmp_path):
    append_streams(2, 2)
    out, target = StringIO(), tmp_path / "kept-elsewhere.json"
    call_command("ledger_digest", "--no-progress", "--out", str(target), stdout=out)
    printed = json.loads(out.getvalue())
    assert printed == json.loads(target.read_text())
    assert printed["tree_size"] == 4
    assert set(printed) == {"tree_size", "root_hash", "last_position", "algorithm",
                            "sealed_at", "key_id", "signature"}  # fmt: skip


def test_ledger_digest_without_a_key_says_how_to_make_one(log_db, monkeypatch, settings):
    monkeypatch.delenv("LEDGER_SIGNING_KEY", raising=False)
    settings.EVENTSOURCING = {**settings.EVENTSOURCING, "LEDGER_SIGNING_KEY": None,
                              "LEDGER_SIGNING_KEY_FILE": None}  # fmt: skip
    with pytest.raises(CommandError, match="no ledger signing key"):
        call_command("ledger_digest", "--no-progress", stdout=StringIO())
    assert LedgerDigest.objects.count() == 0


@pytest.mark.parametrize("table", ["ledger_leaves", "ledger_nodes", "ledger_digests"])
def test_ledger_tables_refuse_changes(log_db, table):
    append_streams(1, 4)
    seal_now(get_event_store())
    change = "tree_size = 0" if table == "ledger_digests" else "hash = hash"
    for statement in (f"UPDATE {table} SET {change}", f"DELETE FROM {table}"):
        with pytest.raises(Exception, match="append-only"), connection.cursor() as cursor:
            cursor.execute(statement)
    assert LedgerNode.objects.count() > 0


def test_run_projections_runs_the_ledger_too(log_db):
    append_streams(2, 3)
    out = StringIO()
    call_command("run_projections", "--once", stdout=out)
    assert NAME in out.getvalue()
    assert LedgerTree().size() == 6
    call_command("run_projections", "ledger", "--once", stdout=StringIO())
    with pytest.raises(CommandError, match="unknown projection"):
        call_command("run_projections", "no.such", "--once", stdout=StringIO())


def test_the_system_checks_name_bad_ledger_settings(settings, monkeypatch, tmp_path):
    from eventsourcing_app.checks import check_ledger_settings

    assert check_ledger_settings() == []
    settings.EVENTSOURCING = {**settings.EVENTSOURCING, "LEDGER_DIGEST_EVERY": 500}
    assert [m.id for m in check_ledger_settings()] == ["eventsourcing.E004"]
    settings.EVENTSOURCING = {**settings.EVENTSOURCING, "LEDGER_DIGEST_EVERY": {"events": 5}}
    monkeypatch.setenv("LEDGER_SIGNING_KEY", "not a key")
    assert [m.id for m in check_ledger_settings()] == ["eventsourcing.E005"]
    monkeypatch.delenv("LEDGER_SIGNING_KEY")
    settings.EVENTSOURCING = {**settings.EVENTSOURCING, "LEDGER_SIGNING_KEY_FILE": None}
    assert [m.id for m in check_ledger_settings()] == ["eventsourcing.W001"]
    missing = tmp_path / "not-made-yet.pem"
    monkeypatch.setenv("LEDGER_SIGNING_KEY_FILE", str(missing))
    assert [m.id for m in check_ledger_settings()] == ["eventsourcing.W001"]
    missing.write_text("not a key either")
    [error] = check_ledger_settings()
    assert error.id == "eventsourcing.E005"
    assert "not an Ed25519 private key" in error.msg
