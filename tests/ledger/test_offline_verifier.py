"""`python -m eventsourcing_app.ledger` checks saved proofs and digests, and imports no Django."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from eventsourcing_app.ledger import digests, merkle

ROOT = Path(__file__).resolve().parents[2]
SIZE = 11  # not a power of two, so proofs have every kind of step
OLD_SIZE = 6


def event_hash(index: int) -> str:
    return hashlib.sha256(f"event {index}".encode()).hexdigest()


class Ledger:
    """A small tree built as the server builds it, with proofs and digests as it serves them."""

    def __init__(self, size: int) -> None:
        self.event_hashes = [event_hash(i) for i in range(size)]
        self.nodes: dict[merkle.NodeKey, bytes] = {}
        self.roots: dict[int, bytes] = {0: merkle.EMPTY_ROOT}
        frontier = merkle.Frontier()
        for index, value in enumerate(self.event_hashes):
            leaf = merkle.leaf_hash(value.encode("ascii"))
            self.nodes[(0, index)] = leaf
            self.nodes.update(frontier.append(leaf))
            self.roots[frontier.size] = frontier.root()

    def inclusion(self, index: int, size: int) -> dict:
        path = merkle.hashes_of(merkle.inclusion_ranges(index, size), self.nodes)
        return {
            "leaf_index": index,
            "tree_size": size,
            "leaf_hash": self.nodes[(0, index)].hex(),
            "audit_path": [h.hex() for h in path],
            "position": f"0-{index + 1}",
            "event_id": index + 1,
            "event_hash": self.event_hashes[index],
        }

    def consistency(self, first: int, second: int) -> dict:
        path = merkle.hashes_of(merkle.consistency_ranges(first, second), self.nodes)
        return {"first": first, "second": second, "path": [h.hex() for h in path]}

    def digest(self, size: int, private_key) -> dict:
        return digests.seal(
            tree_size=size,
            root=self.roots[size],
            last_position=f"0-{size}",
            sealed_at="2025-01-02T03:04:05+00:00",
            private_key=private_key,
        ).as_dict()


@pytest.fixture(scope="module")
def ledger() -> Ledger:
    return Ledger(SIZE)


@pytest.fixture(scope="module")
def private_key():
    return digests.load_private_key(digests.generate_private_key_pem())


@pytest.fixture
def files(tmp_path, ledger, private_key):
    """Write what an auditor saves from the API; return a function naming each file's path."""
    public_key = private_key.public_key()
    other_key = digests.load_private_key(digests.generate_private_key_pem()).public_key()
    documents = {
        "proof": ledger.inclusion(5, SIZE),
        "digest": ledger.digest(SIZE, private_key),
        "old": ledger.digest(OLD_SIZE, private_key),
        "consistency": ledger.consistency(OLD_SIZE, SIZE),
        "key": digests.public_key_document(public_key),
        "other-key": digests.public_key_document(other_key),
    }
    for name, document in documents.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(document))

    def path(name: str, change=None) -> str:
        """The file of `name`, or of a copy of it that `change` edits in place."""
        file = tmp_path / f"{name}.json"
        if change is not None:
            document = json.loads(file.read_text())
            change(document)
            file = tmp_path / f"{name}-changed.json"
            file.write_text(json.dumps(document))
        return str(file)

    return path


def verifier(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "eventsourcing_app.ledger", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def flip_hex(value: str) -> str:
    return f"{int(value[0], 16) ^ 1:x}{value[1:]}"


def test_a_valid_inclusion_proof_without_a_key_says_the_signature_was_not_checked(files):
    result = verifier("verify-inclusion", files("proof"), files("digest"))
    assert result.returncode == 0, result.stderr
    assert f"leaf 5, position 0-6, event 6 is in the tree of {SIZE} leaves" in result.stdout
    assert "NOT checked" in result.stdout


def test_a_valid_inclusion_proof_with_the_key(files, ledger):
    result = verifier("verify-inclusion", files("proof"), files("digest"), "--public-key",
                      files("key"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "signature of the digest: valid" in result.stdout
    assert ledger.roots[SIZE].hex() in result.stdout
    assert "NOT checked" not in result.stdout


def test_the_key_may_be_pem_or_base64(files, tmp_path, private_key):
    document = json.loads(Path(files("key")).read_text())
    (tmp_path / "key.pem").write_text(document["public_key_pem"])
    (tmp_path / "key.b64").write_text(document["public_key"] + "\n")
    for key in ("key.pem", "key.b64"):
        result = verifier("verify-digest", files("digest"), "--public-key", str(tmp_path / key))
        assert result.returncode == 0, result.stderr


def test_another_key_is_named_as_another_key(files):
    result = verifier("verify-inclusion", files("proof"), files("digest"), "--public-key",
                      files("other-key"))  # fmt: skip
    assert result.returncode == 1
    assert "names key_id" in result.stderr
    assert "but the public key given is" in result.stderr


def test_an_altered_root_fails_the_signature(files, ledger):
    def alter(digest):
        digest["root_hash"] = flip_hex(digest["root_hash"])

    result = verifier("verify-inclusion", files("proof"), files("digest", alter), "--public-key",
                      files("key"))  # fmt: skip
    assert result.returncode == 1
    assert "FAILED: the signature of the digest is not valid" in result.stderr
    # Without the key the same digest is caught by the proof instead.
    result = verifier("verify-inclusion", files("proof"), files("digest", alter))
    assert result.returncode == 1
    assert "the proof does not lead to the digest's root" in result.stderr


def test_a_bad_signature_is_caught_by_verify_digest(files):
    def alter(digest):
        signature = bytearray(base64.b64decode(digest["signature"]))
        signature[0] ^= 1
        digest["signature"] = base64.b64encode(signature).decode()

    assert verifier("verify-digest", files("digest"), "--public-key", files("key")).returncode == 0
    result = verifier("verify-digest", files("digest", alter), "--public-key", files("key"))
    assert result.returncode == 1
    assert "not valid" in result.stderr


def test_a_proof_for_another_tree_size_says_which_to_ask_for(files, ledger, tmp_path):
    (tmp_path / "small.json").write_text(json.dumps(ledger.inclusion(5, 8)))
    result = verifier("verify-inclusion", str(tmp_path / "small.json"), files("digest"))
    assert result.returncode == 1
    assert f"the proof is for tree_size 8 but the digest seals {SIZE}" in result.stderr
    assert f"tree_size={SIZE}" in result.stderr


def test_a_tampered_path_does_not_lead_to_the_root(files):
    def tamper(proof):
        proof["audit_path"][1] = flip_hex(proof["audit_path"][1])

    result = verifier("verify-inclusion", files("proof", tamper), files("digest"))
    assert result.returncode == 1
    assert "FAILED: the proof does not lead to the digest's root" in result.stderr

    def truncate(proof):
        proof["audit_path"].pop()

    result = verifier("verify-inclusion", files("proof", truncate), files("digest"))
    assert result.returncode == 1
    assert "the audit path has 3 hashes where leaf 5 of 11 needs 4" in result.stderr


def test_the_leaf_must_be_the_event(files, ledger):
    def other_event(proof):
        proof["event_hash"] = ledger.event_hashes[4]

    result = verifier("verify-inclusion", files("proof", other_event), files("digest"))
    assert result.returncode == 1
    assert "the leaf is not that event" in result.stderr
    # --event-hash wins over the proof's own, both ways.
    result = verifier("verify-inclusion", files("proof"), files("digest"), "--event-hash",
                      ledger.event_hashes[4])  # fmt: skip
    assert result.returncode == 1
    assert "the leaf is not that event" in result.stderr
    result = verifier("verify-inclusion", files("proof", other_event), files("digest"),
                      "--event-hash", ledger.event_hashes[5].upper())  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_a_minimal_proof_needs_no_event_fields(files):
    def minimal(proof):
        for name in ("position", "event_id", "event_hash"):
            del proof[name]

    result = verifier("verify-inclusion", files("proof", minimal), files("digest"))
    assert result.returncode == 0, result.stderr
    assert "no event hash given" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not JSON"),
        ("[1, 2]", "an inclusion proof is a JSON object"),
        ('{"leaf_index": 0, "tree_size": 1, "leaf_hash": "00"}', "lacks audit_path"),
        ('{"leaf_index": true, "tree_size": 1, "leaf_hash": "", "audit_path": []}',
         "leaf_index must be a whole number"),
        ('{"leaf_index": 3, "tree_size": 2, "leaf_hash": "", "audit_path": []}',
         "leaf_index 3 is not below tree_size 2"),
        ('{"leaf_index": 0, "tree_size": 1, "leaf_hash": "abcd", "audit_path": []}',
         "leaf_hash must be 64 hex digits"),
        ('{"leaf_index": 0, "tree_size": 2, "leaf_hash": "' + "0" * 64 + '", "audit_path": ["'
         + "z" * 64 + '"]}', "audit_path[0] must be 64 hex digits"),
    ],
)  # fmt: skip
def test_malformed_proofs_are_input_errors(files, tmp_path, content, message):
    (tmp_path / "bad.json").write_text(content)
    result = verifier("verify-inclusion", str(tmp_path / "bad.json"), files("digest"))
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_unreadable_files_and_bad_digests_are_input_errors(files, tmp_path):
    result = verifier("verify-inclusion", files("proof"), str(tmp_path / "missing.json"))
    assert result.returncode == 2
    assert "cannot read" in result.stderr

    def drop_root(digest):
        del digest["root_hash"]

    result = verifier("verify-inclusion", files("proof"), files("digest", drop_root))
    assert result.returncode == 2
    assert "the digest lacks root_hash" in result.stderr
    result = verifier("verify-digest", files("digest"), "--public-key", files("proof"))
    assert result.returncode == 2
    assert "not an Ed25519 public key" in result.stderr
    result = verifier("verify-inclusion", files("proof"), files("digest"), "--event-hash", "ab")
    assert result.returncode == 2
    assert "--event-hash must be 64 hex digits" in result.stderr


def test_a_valid_consistency_proof(files):
    result = verifier("verify-consistency", files("consistency"), files("old"), files("digest"),
                      "--public-key", files("key"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"the tree of {SIZE} leaves extends the tree of {OLD_SIZE} leaves" in result.stdout
    assert "signature of the old digest: valid" in result.stdout
    assert "signature of the new digest: valid" in result.stdout
    result = verifier("verify-consistency", files("consistency"), files("old"), files("digest"))
    assert result.returncode == 0, result.stderr
    assert "NOT checked" in result.stdout


def test_a_tampered_consistency_proof_fails(files):
    def tamper(proof):
        proof["path"][0] = flip_hex(proof["path"][0])

    result = verifier("verify-consistency", files("consistency", tamper), files("old"),
                      files("digest"))  # fmt: skip
    assert result.returncode == 1
    assert "the proof does not show that the new tree extends the old" in result.stderr


def test_consistency_digests_must_match_the_proofs_sizes(files):
    # Old and new swapped: the sizes tell the auditor before any hashing.
    result = verifier("verify-consistency", files("consistency"), files("digest"), files("old"))
    assert result.returncode == 1
    assert f"the old digest seals tree_size {SIZE} but the proof starts from first={OLD_SIZE}" in (
        result.stderr
    )
    result = verifier("verify-consistency", files("consistency"), files("old"), files("old"))
    assert result.returncode == 1
    assert f"the new digest seals tree_size {OLD_SIZE} but the proof goes to second={SIZE}" in (
        result.stderr
    )


def test_a_consistency_proof_with_another_key_fails(files):
    result = verifier("verify-consistency", files("consistency"), files("old"), files("digest"),
                      "--public-key", files("other-key"))  # fmt: skip
    assert result.returncode == 1
    assert "the old digest names key_id" in result.stderr


def test_help_and_usage_errors():
    result = verifier("--help")
    assert result.returncode == 0
    assert "verify-inclusion" in result.stdout
    assert "exit status" in result.stdout
    result = verifier("verify-digest", "digest.json")  # --public-key is required here
    assert result.returncode == 2


IMPORTS = """
import json, sys
from eventsourcing_app.ledger.__main__ import main
status = main(sys.argv[1:])
print(json.dumps({"status": status, "modules": sorted(sys.modules)}))
"""


@pytest.mark.parametrize("with_key", [False, True])
def test_the_verifier_imports_no_django_and_no_database_driver(files, with_key):
    key = ["--public-key", files("key")] if with_key else []
    result = subprocess.run(
        [sys.executable, "-c", IMPORTS, "verify-inclusion", files("proof"), files("digest"), *key],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["status"] == 0
    roots = {name.partition(".")[0] for name in report["modules"]}
    assert not roots & {"django", "psycopg", "psycopg2", "sqlite3", "_sqlite3"}
    # cryptography is needed for signatures only: proofs alone need the standard library.
    assert ("cryptography" in roots) is with_key
