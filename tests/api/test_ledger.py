"""The ledger endpoints: the signed digest, its key, inclusion and consistency proofs, refusals.

Sealing reads the log as a log reader does, so on PostgreSQL the tests that seal commit for real
(`log_db`); those that only check parameters or the schema roll back.
"""

import contextlib
import json

import pytest
from django.db import connection
from rest_framework.test import APIClient

from bankdemo import services
from eventsourcing_app.ledger import digests, keys, merkle
from eventsourcing_app.ledger.sealer import seal_now
from eventsourcing_app.models import Event
from eventsourcing_app.wiring import get_event_store
from tests.api.conftest import staff
from tests.helpers import on_postgresql

DIGEST = "/api/ledger/digest/"
KEY = "/api/ledger/key/"
INCLUSION = "/api/ledger/inclusion/"
CONSISTENCY = "/api/ledger/consistency/"
DIGEST_FIELDS = {"tree_size", "root_hash", "last_position", "algorithm", "sealed_at", "key_id",
                 "signature"}  # fmt: skip
INCLUSION_FIELDS = {"leaf_index", "tree_size", "leaf_hash", "audit_path", "position", "event_id",
                    "event_hash"}  # fmt: skip


def bank(accounts: int = 3) -> None:
    """Open accounts with a few movements each: a log of several events per stream."""
    for number in range(accounts):
        opened, _ = services.account_open(owner=f"Owner {number}", currency="EUR")
        services.account_deposit(account_id=opened.id, amount=f"{number + 1}0.00")
        services.account_withdraw(account_id=opened.id, amount="1.00")


@pytest.fixture
def sealed(log_db) -> digests.Digest:
    """A log of nine events, sealed under a signed digest."""
    bank(3)
    return seal_now(get_event_store())


def log_events() -> list[Event]:
    return list(Event.objects.order_by("transaction_id", "id"))


def hashes(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(value) for value in values]


def refusal(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert body["detail"]
    return body


# The digest and its key


def test_the_digest_is_served_exactly_as_sealed_and_verifies_with_the_key(auditor, sealed):
    response = auditor.get(DIGEST)
    assert response.status_code == 200
    assert response.json() == sealed.as_dict()
    assert set(response.json()) == DIGEST_FIELDS
    key = auditor.get(KEY)
    assert key.status_code == 200
    assert key.json() == digests.public_key_document(keys.public_key())
    assert key.json()["algorithm"] == "ed25519"
    assert key.json()["key_id"] == sealed.key_id
    # An auditor's check: the served key (base64 and PEM alike) verifies the served digest.
    served = digests.Digest.from_dict(response.json())
    for form in (key.content, key.json()["public_key"], key.json()["public_key_pem"]):
        assert digests.signature_valid(served, digests.load_public_key(form))


def test_the_newest_digest_is_served(auditor, sealed):
    bank(1)
    newer = seal_now(get_event_store())
    assert auditor.get(DIGEST).json() == newer.as_dict()
    assert newer.tree_size == sealed.tree_size + 3


def test_before_the_first_digest_there_is_none(auditor, log_db):
    refusal(auditor.get(DIGEST), 404, "no_digest")


def no_signing_key(monkeypatch, settings) -> None:
    monkeypatch.delenv("LEDGER_SIGNING_KEY", raising=False)
    settings.EVENTSOURCING = {**settings.EVENTSOURCING, "LEDGER_SIGNING_KEY": None,
                              "LEDGER_SIGNING_KEY_FILE": None}  # fmt: skip


def test_without_a_signing_key_the_key_is_503(auditor, log_db, monkeypatch, settings):
    no_signing_key(monkeypatch, settings)
    body = refusal(auditor.get(KEY), 503, "no_signing_key")
    assert "LEDGER_SIGNING_KEY" in body["detail"]


def test_an_unusable_signing_key_is_503_too(auditor, log_db, monkeypatch, tmp_path):
    monkeypatch.setenv("LEDGER_SIGNING_KEY", "not a key")
    body = refusal(auditor.get(KEY), 503, "no_signing_key")
    assert "not an Ed25519 private key" in body["detail"]
    monkeypatch.delenv("LEDGER_SIGNING_KEY")
    monkeypatch.setenv("LEDGER_SIGNING_KEY_FILE", str(tmp_path))  # there, but not a file
    body = refusal(auditor.get(KEY), 503, "no_signing_key")
    assert "cannot read the ledger signing key" in body["detail"]
    monkeypatch.setenv("LEDGER_SIGNING_KEY_FILE", str(tmp_path / "not-made-yet.pem"))
    body = refusal(auditor.get(KEY), 503, "no_signing_key")
    assert "ledger_keygen" in body["detail"]  # a key named but not made: how to make it


def test_digests_already_sealed_are_served_without_the_key(auditor, sealed, monkeypatch, settings):
    no_signing_key(monkeypatch, settings)
    assert auditor.get(DIGEST).json() == sealed.as_dict()


# Inclusion proofs


def test_every_event_has_an_inclusion_proof_to_the_digests_root(teller, sealed):
    events = log_events()
    assert len(events) == sealed.tree_size == 9
    for index, event in enumerate(events):
        query = {"position": str(event.position), "tree_size": sealed.tree_size}
        response = teller.get(INCLUSION, query)
        assert response.status_code == 200, response.content
        proof = response.json()
        assert set(proof) == INCLUSION_FIELDS
        assert (proof["leaf_index"], proof["tree_size"]) == (index, sealed.tree_size)
        assert (proof["position"], proof["event_id"]) == (str(event.position), event.id)
        assert proof["event_hash"] == event.hash
        leaf = merkle.leaf_hash(event.hash.encode("ascii"))
        assert proof["leaf_hash"] == leaf.hex()
        path = hashes(proof["audit_path"])
        assert merkle.verify_inclusion(index, sealed.tree_size, leaf, path, sealed.root)
        # The proof is about this root: it does not verify against another one.
        assert not merkle.verify_inclusion(index, sealed.tree_size, leaf, path, bytes(32))


def test_without_tree_size_the_proof_is_for_the_latest_digest(auditor, sealed):
    first = log_events()[0]
    bank(1)
    newer = seal_now(get_event_store())
    proof = auditor.get(INCLUSION, {"position": str(first.position)}).json()
    assert proof["tree_size"] == newer.tree_size
    leaf = bytes.fromhex(proof["leaf_hash"])
    assert merkle.verify_inclusion(0, newer.tree_size, leaf, hashes(proof["audit_path"]),
                                   newer.root)  # fmt: skip
    # An older digest's tree_size still gets a proof to the older root.
    older = auditor.get(INCLUSION, {"position": str(first.position), "tree_size": 9}).json()
    assert merkle.verify_inclusion(0, 9, leaf, hashes(older["audit_path"]), sealed.root)


def test_without_tree_size_or_any_digest_it_is_404_no_digest(auditor, log_db):
    bank(1)
    position = str(log_events()[0].position)
    refusal(auditor.get(INCLUSION, {"position": position}), 404, "no_digest")


def test_an_event_not_sealed_yet_is_404_not_sealed(auditor, sealed):
    bank(1)
    late = log_events()[-1]
    refusal(auditor.get(INCLUSION, {"position": str(late.position)}), 404, "not_sealed")
    # A sealed event's id at another transaction names no sealed event either.
    first = log_events()[0]
    other = f"{first.transaction_id + 1}-{first.id}"
    refusal(auditor.get(INCLUSION, {"position": other}), 404, "not_sealed")
    refusal(auditor.get(INCLUSION, {"position": "0-999999999"}), 404, "not_sealed")


def test_an_event_beyond_the_tree_asked_for_is_404_not_in_tree(auditor, sealed):
    last = log_events()[-1]
    query = {"position": str(last.position), "tree_size": 4}
    refusal(auditor.get(INCLUSION, query), 404, "not_in_tree")


def test_a_tree_larger_than_the_ledger_is_404(auditor, sealed):
    first = str(log_events()[0].position)
    for tree_size in (sealed.tree_size + 1, 2**63 - 1):
        query = {"position": first, "tree_size": tree_size}
        refusal(auditor.get(INCLUSION, query), 404, "tree_size_beyond_ledger")
    query = {"first": 1, "second": sealed.tree_size + 1}
    refusal(auditor.get(CONSISTENCY, query), 404, "tree_size_beyond_ledger")


BIGINT_PLUS_ONE = str(2**63)


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("", {"position"}),
        ("tree_size=3", {"position"}),
        ("position=", {"position"}),
        ("position=abc", {"position"}),
        ("position=42", {"position"}),
        ("position=0-", {"position"}),
        ("position=-1-2", {"position"}),
        ("position=1-2-3", {"position"}),
        ("position=%200-1", {"position"}),
        ("position=0-1%0A", {"position"}),
        ("position=0-1234567890123456789", {"position"}),  # beyond a bigint's 18 safe digits
        ("position=0-1&tree_size=", {"tree_size"}),
        ("position=0-1&tree_size=0", {"tree_size"}),
        ("position=0-1&tree_size=-1", {"tree_size"}),
        ("position=0-1&tree_size=abc", {"tree_size"}),
        ("position=0-1&tree_size=1.5", {"tree_size"}),
        ("position=0-1&tree_size=%2B5", {"tree_size"}),
        ("position=0-1&tree_size=%205", {"tree_size"}),
        (f"position=0-1&tree_size={BIGINT_PLUS_ONE}", {"tree_size"}),
        ("position=0-1&tree_size=1" + "0" * 40, {"tree_size"}),
        ("position=0-1&position=0-2", {"position"}),
        ("position=0-1&tree_size=1&tree_size=2", {"tree_size"}),
    ],
)
def test_malformed_inclusion_queries_are_400_naming_the_parameter(auditor, query, fields):
    body = refusal(auditor.get(f"{INCLUSION}?{query}"), 400, "invalid")
    assert set(body["fields"]) == fields


# Consistency proofs


def test_consistency_proofs_verify_between_digests(auditor, sealed):
    bank(2)
    newer = seal_now(get_event_store())
    response = auditor.get(CONSISTENCY, {"first": sealed.tree_size, "second": newer.tree_size})
    assert response.status_code == 200
    proof = response.json()
    assert set(proof) == {"first", "second", "path"}
    assert (proof["first"], proof["second"]) == (sealed.tree_size, newer.tree_size)
    path = hashes(proof["path"])
    assert merkle.verify_consistency(sealed.tree_size, newer.tree_size, path, sealed.root,
                                     newer.root)  # fmt: skip
    assert not merkle.verify_consistency(sealed.tree_size, newer.tree_size, path, bytes(32),
                                         newer.root)  # fmt: skip
    # A tree is consistent with itself, by the empty proof.
    same = auditor.get(CONSISTENCY, {"first": newer.tree_size, "second": newer.tree_size})
    assert same.json()["path"] == []
    assert merkle.verify_consistency(newer.tree_size, newer.tree_size, [], newer.root,
                                     newer.root)  # fmt: skip


def test_every_earlier_tree_is_consistent_with_the_digest(auditor, sealed):
    roots = {}
    for size in range(1, sealed.tree_size + 1):
        roots[size] = merkle.root_of(
            merkle.leaf_hash(event.hash.encode("ascii")) for event in log_events()[:size]
        )
    for first in range(1, sealed.tree_size + 1):
        proof = auditor.get(CONSISTENCY, {"first": first, "second": sealed.tree_size}).json()
        assert merkle.verify_consistency(first, sealed.tree_size, hashes(proof["path"]),
                                         roots[first], sealed.root), first  # fmt: skip


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("", {"first", "second"}),
        ("first=1", {"second"}),
        ("second=1", {"first"}),
        ("first=&second=2", {"first"}),
        ("first=0&second=2", {"first"}),
        ("first=-1&second=2", {"first"}),
        ("first=one&second=2", {"first"}),
        ("first=1.0&second=2", {"first"}),
        ("first=1&second=0", {"second"}),
        (f"first=1&second={BIGINT_PLUS_ONE}", {"second"}),
        ("first=3&second=2", {"first", "second"}),
        ("first=1&first=2&second=3", {"first"}),
    ],
)
def test_malformed_consistency_queries_are_400_naming_the_parameter(auditor, query, fields):
    body = refusal(auditor.get(f"{CONSISTENCY}?{query}"), 400, "invalid")
    assert set(body["fields"]) == fields


# A damaged ledger


@contextlib.contextmanager
def append_only_triggers_off(table: str):
    """Switch `table`'s triggers off; on PostgreSQL the test commits, so switch them back on."""
    with connection.cursor() as cursor:
        if on_postgresql():
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
            try:
                yield cursor
            finally:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")
        else:  # inside the test's transaction, which rolls back with the triggers restored
            cursor.execute(f"DROP TRIGGER {table}_no_update")
            cursor.execute(f"DROP TRIGGER {table}_no_delete")
            yield cursor


def test_a_node_missing_from_the_ledger_is_409_ledger_damaged(auditor, sealed):
    with append_only_triggers_off("ledger_nodes") as cursor:
        cursor.execute("DELETE FROM ledger_nodes WHERE level = 1 AND node_index = 0")
    third = str(log_events()[2].position)
    body = refusal(auditor.get(INCLUSION, {"position": third}), 409, "ledger_damaged")
    assert "node 0 of level 1" in body["detail"]
    refusal(auditor.get(CONSISTENCY, {"first": 3, "second": 9}), 409, "ledger_damaged")


def test_a_malformed_stored_digest_is_409_ledger_damaged(auditor, sealed):
    with append_only_triggers_off("ledger_digests") as cursor:
        cursor.execute("UPDATE ledger_digests SET root_hash = %s", ["not hex"])
    body = refusal(auditor.get(DIGEST), 409, "ledger_damaged")
    assert "root_hash" in body["detail"]
    first = str(log_events()[0].position)
    refusal(auditor.get(INCLUSION, {"position": first}), 409, "ledger_damaged")


# Who may read them


@pytest.mark.parametrize(
    "url",
    [DIGEST, KEY, f"{INCLUSION}?position={{first}}&tree_size=1", f"{CONSISTENCY}?first=1&second=1"],
)
def test_the_ledger_is_for_tellers_and_auditors(url, anonymous, sealed):
    url = url.format(first=log_events()[0].position)
    refusal(anonymous.get(url), 401, "not_authenticated")
    outsider = APIClient()
    outsider.force_authenticate(staff("outsider", None))
    refusal(outsider.get(url), 403, "permission_denied")
    for group in ("tellers", "auditors"):
        member = APIClient()
        member.force_authenticate(staff(f"member-of-{group}", group))
        assert member.get(url).status_code == 200


def test_the_ledger_refuses_writes(teller, sealed):
    for url in (DIGEST, KEY, INCLUSION, CONSISTENCY):
        assert teller.post(url, {}).status_code == 405


# The schema


@pytest.fixture
def openapi(db) -> dict:
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


@pytest.mark.parametrize(
    ("path", "statuses", "parameters"),
    [
        (DIGEST, {"200", "401", "403", "404", "503"}, set()),
        (KEY, {"200", "401", "403", "503"}, set()),
        (INCLUSION, {"200", "400", "401", "403", "404", "409", "503"}, {"position", "tree_size"}),
        (CONSISTENCY, {"200", "400", "401", "403", "404", "409", "503"}, {"first", "second"}),
    ],
)
def test_the_schema_documents_every_status_and_parameter(openapi, path, statuses, parameters):
    operation = openapi["paths"][path]["get"]
    assert set(operation["responses"]) == statuses
    assert {p["name"] for p in operation.get("parameters", ())} == parameters
    required = {p["name"] for p in operation.get("parameters", ()) if p.get("required")}
    assert required == parameters - {"tree_size"}


def test_the_schema_describes_the_answers_as_served(openapi):
    schemas = openapi["components"]["schemas"]

    def fields(path: str) -> set[str]:
        ref = openapi["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        component = schemas[ref["schema"]["$ref"].rsplit("/", 1)[-1]]
        assert set(component["required"]) == set(component["properties"])
        return set(component["properties"])

    assert fields(DIGEST) == DIGEST_FIELDS
    assert fields(KEY) == {"key_id", "algorithm", "public_key", "public_key_pem"}
    assert fields(INCLUSION) == INCLUSION_FIELDS
    assert fields(CONSISTENCY) == {"first", "second", "path"}
