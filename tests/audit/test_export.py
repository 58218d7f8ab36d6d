"""Evidence export: the event list's filtered rows as CSV and JSON Lines, streamed in batches,
recorded append-only, with a manifest whose hash, digest and proofs match the file."""

import csv
import hashlib
import io
import json
import uuid

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, connection, transaction
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext

from bankdemo import seeding
from eventsourcing_app.audit import export
from eventsourcing_app.core.errors import AppendOnlyError
from eventsourcing_app.core.hashchain import canonical_json, timestamp_text
from eventsourcing_app.ledger import merkle
from eventsourcing_app.ledger.sealer import seal_now
from eventsourcing_app.models import Event, EvidenceExport
from eventsourcing_app.wiring import get_event_store
from tests.audit.test_admin import EVENTS, login

pytestmark = pytest.mark.usefixtures("log_db")
EXPORT = f"{EVENTS}export/"
DEPOSITS = "event_type=bank.MoneyDeposited"


@pytest.fixture
def history():
    seeding.seed_history(accounts=3, events=40, progress=lambda n: None)
    seeding.seed_transfers(2)


def download(client, fmt: str, query: str = "") -> tuple[bytes, str]:
    response = client.get(f"{EXPORT}{fmt}/" + (f"?{query}" if query else ""))
    assert response.status_code == 200, response
    assert isinstance(response, StreamingHttpResponse)
    body = b"".join(response.streaming_content)
    response.close()
    export_id = response["X-Evidence-Export-Id"]
    assert response["Content-Disposition"] == (f'attachment; filename="evidence-{export_id}.{fmt}"')
    assert response["X-Evidence-Manifest"] == f"{EXPORT}{export_id}/manifest.json"
    return body, export_id


def expected_rows(**filters) -> list[dict]:
    events = Event.objects.filter(**filters).order_by("transaction_id", "id")
    return [
        {
            "position": str(event.position),
            "aggregate_id": str(event.aggregate_id),
            "aggregate_type": event.aggregate_type,
            "event_type": event.event_type,
            "version": str(event.version),
            "schema_version": str(event.schema_version),
            "data": canonical_json(event.event_data),
            "metadata": canonical_json(event.metadata),
            "created_at": timestamp_text(event.created_at),
            "hash": event.hash,
            "previous_hash": event.previous_hash,
        }
        for event in events
    ]


def listed_count(client, query: str) -> int:
    return client.get(f"{EVENTS}?{query}").context["cl"].result_count


def test_the_list_links_to_the_export_of_its_filters(auditor, history):
    page = auditor.get(f"{EVENTS}?{DEPOSITS}").content.decode()
    assert f'href="{EXPORT}csv/?{DEPOSITS}"' in page
    assert f'href="{EXPORT}jsonl/?{DEPOSITS}"' in page


def test_csv_holds_every_column_of_exactly_the_listed_rows(auditor, history):
    body, _ = download(auditor, "csv", DEPOSITS)
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    assert list(rows[0]) == list(export.COLUMNS)
    assert len(rows) == listed_count(auditor, DEPOSITS) > 10
    assert rows == expected_rows(event_type="bank.MoneyDeposited")


def test_json_lines_hold_the_same_rows_with_canonical_data(auditor, history):
    body, _ = download(auditor, "jsonl", DEPOSITS)
    lines = body.decode("utf-8").splitlines()
    expected = expected_rows(event_type="bank.MoneyDeposited")
    assert len(lines) == len(expected) == listed_count(auditor, DEPOSITS)
    for line, row in zip(lines, expected, strict=True):
        parsed = json.loads(line)
        assert sorted(parsed) == sorted(export.COLUMNS)
        assert f'"data":{row["data"]},' in line  # the canonical text itself
        assert canonical_json(parsed["data"]) == row["data"]
        assert canonical_json(parsed["metadata"]) == row["metadata"]
        assert {k: str(v) for k, v in parsed.items() if k not in ("data", "metadata")} == {
            k: v for k, v in row.items() if k not in ("data", "metadata")
        }


def test_the_search_selects_the_rows_as_on_the_list(auditor, history):
    account = Event.objects.values_list("aggregate_id", flat=True).first()
    body, _ = download(auditor, "csv", f"q={account}&p=0&o=1")  # page and sort change nothing
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    assert rows == expected_rows(aggregate_id=account)


def test_the_list_s_show_counts_switch_is_not_a_filter(auditor, history):
    _, export_id = download(auditor, "csv", f"{DEPOSITS}&_facets=True")
    assert EvidenceExport.objects.get(export_id=export_id).filters == {
        "event_type": ["bank.MoneyDeposited"]
    }


def test_the_download_is_recorded_and_its_manifest_names_its_hash(auditor, history):
    body, export_id = download(auditor, "csv", DEPOSITS)
    record = EvidenceExport.objects.get(export_id=export_id)
    assert record.exported_by == "auditor"
    assert record.format == "csv"
    assert record.filters == {"event_type": ["bank.MoneyDeposited"]}
    assert record.row_count == len(expected_rows(event_type="bank.MoneyDeposited"))
    assert record.sha256 == hashlib.sha256(body).hexdigest()
    assert record.started_at <= record.completed_at
    manifest = auditor.get(f"{EXPORT}{export_id}/manifest.json").json()
    assert manifest["sha256"] == hashlib.sha256(body).hexdigest()
    assert manifest["row_count"] == record.row_count
    assert manifest["filters"] == {"event_type": ["bank.MoneyDeposited"]}
    assert manifest["file"] == f"evidence-{export_id}.csv"
    assert manifest["exported_by"] == "auditor"


def test_an_unknown_or_unfinished_export_has_no_manifest(auditor, history):
    response = auditor.get(f"{EXPORT}csv/?{DEPOSITS}")
    next(iter(response.streaming_content))  # the download stops after its first chunk
    export_id = response["X-Evidence-Export-Id"]
    assert not EvidenceExport.objects.filter(export_id=export_id).exists()
    assert auditor.get(f"{EXPORT}{export_id}/manifest.json").status_code == 404
    assert auditor.get(f"{EXPORT}{uuid.uuid4()}/manifest.json").status_code == 404


def test_the_newest_digest_covers_the_rows_and_every_proof_verifies(auditor, history):
    body, export_id = download(auditor, "jsonl", DEPOSITS)
    before = auditor.get(f"{EXPORT}{export_id}/manifest.json").json()
    assert before["digest"] is None
    assert before["digest_covers_all_rows"] is False
    digest = seal_now(get_event_store())
    manifest = auditor.get(f"{EXPORT}{export_id}/manifest.json").json()
    assert manifest["digest"]["root_hash"] == digest.root_hash
    assert manifest["digest_covers_all_rows"] is True
    response = auditor.get(f"{EXPORT}{export_id}/manifest.json?proofs=1")
    assert response.status_code == 200
    proved = json.loads(b"".join(response.streaming_content))
    assert proved["sha256"] == hashlib.sha256(body).hexdigest()
    rows = [json.loads(line) for line in body.decode().splitlines()]
    assert [proof["position"] for proof in proved["proofs"]] == [row["position"] for row in rows]
    root = bytes.fromhex(digest.root_hash)
    for proof, row in zip(proved["proofs"], rows, strict=True):
        leaf = merkle.leaf_hash(row["hash"].encode("ascii"))
        assert proof["leaf_hash"] == leaf.hex()
        path = [bytes.fromhex(value) for value in proof["audit_path"]]
        assert merkle.verify_inclusion(proof["leaf_index"], digest.tree_size, leaf, path, root)


def test_rows_appended_after_the_export_are_not_in_it_nor_in_its_proofs(auditor, history):
    body, export_id = download(auditor, "csv")
    seeding.seed_transfers(1)  # more events after the export
    seal_now(get_event_store())
    proved = json.loads(
        b"".join(auditor.get(f"{EXPORT}{export_id}/manifest.json?proofs=1").streaming_content)
    )
    assert len(proved["proofs"]) == proved["row_count"] == body.decode().count("\r\n") - 1
    assert proved["row_count"] < Event.objects.count()


def test_the_record_refuses_update_and_delete(auditor, history):
    _, export_id = download(auditor, "csv")
    record = EvidenceExport.objects.get(export_id=export_id)
    record.row_count = 0
    with pytest.raises(AppendOnlyError):
        record.save()
    with pytest.raises(AppendOnlyError):
        record.delete()
    with pytest.raises(AppendOnlyError):
        EvidenceExport.objects.filter(pk=record.pk).update(row_count=0)
    for statement in ("UPDATE evidence_exports SET row_count = 0", "DELETE FROM evidence_exports"):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    assert EvidenceExport.objects.get(export_id=export_id).row_count > 0


def test_auditors_see_the_record_read_only(auditor, history):
    _, export_id = download(auditor, "csv")
    page = auditor.get("/admin/eventsourcing_app/evidenceexport/")
    assert page.status_code == 200
    assert export_id in page.content.decode()
    assert auditor.get("/admin/eventsourcing_app/evidenceexport/add/").status_code == 403


def test_only_auditors_and_superusers_export(client, history):
    assert client.get(f"{EXPORT}csv/").status_code == 302  # anonymous: to the login page
    assert client.get(f"{EXPORT}{uuid.uuid4()}/manifest.json").status_code == 302
    login(client, "teller", "tellers")
    assert client.get(f"{EXPORT}csv/").status_code == 403
    assert client.get(f"{EXPORT}jsonl/").status_code == 403
    assert client.get(f"{EXPORT}{uuid.uuid4()}/manifest.json").status_code == 403
    assert 'class="evidence-export"' not in client.get(EVENTS).content.decode()
    login(client, "root", superuser=True)
    assert client.get(f"{EXPORT}csv/").status_code == 200
    assert not EvidenceExport.objects.exists()  # a response never read is not an export
    assert client.get(f"{EXPORT}xml/").status_code == 404
    assert User.objects.filter(username="teller").exists()


def test_a_large_export_streams_in_batches_of_constant_size(auditor, monkeypatch):
    seeding.seed_history(accounts=20, events=20_000, progress=lambda n: None)
    total = Event.objects.count()
    assert total >= 20_000
    with CaptureQueriesContext(connection) as queries:
        response = auditor.get(f"{EXPORT}csv/")
        assert isinstance(response, StreamingHttpResponse)
        lines = 0
        biggest = 0
        for chunk in response.streaming_content:
            lines += chunk.count(b"\r\n")
            biggest = max(biggest, len(chunk))
        response.close()
    assert lines == total + 1
    selects = [q for q in queries.captured_queries if 'FROM "events"' in q["sql"]]
    batches = -(-total // export.BATCH_SIZE)
    # One keyset query a batch (plus the list's own few), never OFFSET, never one per row.
    assert batches <= len(selects) <= batches + 5
    assert not any("OFFSET" in q["sql"] for q in selects)
    assert biggest < 2_000_000  # a batch at a time, not the file
