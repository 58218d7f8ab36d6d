"""Evidence export: the event list's rows, as its filters select them, as CSV or JSON Lines.

The file is streamed in log order, batch by batch with keyset pagination, up to the log's
head when the export began, so memory stays constant at any size. Its SHA-256 and row count
are computed while it streams; when the last byte is written the export is recorded
(`EvidenceExport`, append-only) under the id its file name carried from the first byte. The
manifest of that id then states the filters, count, hash, and the newest ledger digest (and
whether it covers every row); with `?proofs=1` it re-reads the same rows, checks that they
still hash to the recorded file, and gives each row's inclusion proof against the digest.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import Callable, Iterator

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseBadRequest, JsonResponse, StreamingHttpResponse
from django.http.request import QueryDict
from django.urls import path, reverse
from django.utils import timezone

from eventsourcing_app.audit.readonly import ReadOnlyAdmin
from eventsourcing_app.core.hashchain import canonical_json, timestamp_text
from eventsourcing_app.core.records import START, Position
from eventsourcing_app.ledger.sealer import latest_digest
from eventsourcing_app.ledger.tree import LedgerTree
from eventsourcing_app.models import EvidenceExport
from eventsourcing_app.wiring import get_event_store

BATCH_SIZE = 2000
COLUMNS = ("position", "aggregate_id", "aggregate_type", "event_type", "version",
           "schema_version", "data", "metadata", "created_at", "hash", "previous_hash")  # fmt: skip
FIELDS = ("id", "transaction_id", "aggregate_id", "aggregate_type", "event_type", "version",
          "schema_version", "event_data", "metadata", "created_at", "hash",
          "previous_hash")  # fmt: skip
# The changelist's own parameters that do not select rows: every page is exported, in log order.
RAW = ("data", "metadata")
NOT_FILTERS = ("p", "o", "e", "_changelist_filters", "_facets")
CONTENT_TYPES = {EvidenceExport.CSV: "text/csv; charset=utf-8",
                 EvidenceExport.JSONL: "application/x-ndjson; charset=utf-8"}  # fmt: skip


def urls(model_admin) -> list:
    """The export URLs, mounted under the event list by `AuditViews.audit_urls`."""
    view = model_admin.admin_site.admin_view
    return [
        path("export/<str:fmt>/", view(lambda request, fmt: export_view(model_admin, request, fmt)),
             name="eventsourcing_export"),
        path("export/<uuid:export_id>/manifest.json",
             view(lambda request, export_id: manifest_view(model_admin, request, export_id)),
             name="eventsourcing_export_manifest"),
    ]  # fmt: skip


def may_export(model_admin, request) -> bool:
    """Auditors (who hold the view permission on exports) and superusers."""
    user = request.user
    return model_admin.has_view_permission(request) and (
        user.is_superuser or user.has_perm("eventsourcing_app.view_evidenceexport")
    )


def filters_of(query: QueryDict) -> QueryDict:
    """The list's row-selecting parameters from a query string, in a stable order."""
    kept = QueryDict(mutable=True)
    for key in sorted(query):
        if key not in NOT_FILTERS:
            kept.setlist(key, query.getlist(key))
    return kept


def listed_rows(model_admin, request, query: QueryDict):
    """The queryset the event list shows for `query`: its own filters and search, unordered."""
    original = request.GET
    request.GET = query
    try:
        changelist = model_admin.get_changelist_instance(request)
        return changelist.get_queryset(request).order_by()
    finally:
        request.GET = original


def batches(queryset, upto: Position, size: int = BATCH_SIZE) -> Iterator[list[dict]]:
    """Yield the rows of `queryset` at or before `upto`, in log order, `size` at a time.

    Keyset pagination on (transaction_id, id), the events_position_idx: every batch is one
    indexed range query, whatever the offset; no row is held beyond its batch.
    """
    bounded = queryset.filter(
        Q(transaction_id__lt=upto.transaction) | Q(transaction_id=upto.transaction, id__lte=upto.id)
    )
    after = START
    while True:
        rows = list(
            bounded.filter(
                Q(transaction_id__gt=after.transaction)
                | Q(transaction_id=after.transaction, id__gt=after.id)
            )
            .order_by("transaction_id", "id")
            .values(*FIELDS)[:size]
        )
        if not rows:
            return
        yield rows
        after = Position(rows[-1]["transaction_id"], rows[-1]["id"])
        if len(rows) < size:
            return


def _json(value) -> str:
    try:
        return canonical_json(value)
    except Exception:  # a row altered behind the triggers: still exported, as it reads
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def row_of(event: dict) -> dict:
    """An exported row: every column, data and metadata as canonical JSON text."""
    return {
        "position": str(Position(event["transaction_id"], event["id"])),
        "aggregate_id": str(event["aggregate_id"]),
        "aggregate_type": event["aggregate_type"],
        "event_type": event["event_type"],
        "version": event["version"],
        "schema_version": event["schema_version"],
        "data": _json(event["event_data"]),
        "metadata": _json(event["metadata"]),
        "created_at": timestamp_text(event["created_at"]),
        "hash": event["hash"],
        "previous_hash": event["previous_hash"],
    }


def csv_writer() -> tuple[Callable[[list[dict]], str], str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def rows(events: list[dict]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([row_of(event)[column] for column in COLUMNS] for event in events)
        return buffer.getvalue()

    writer.writerow(COLUMNS)
    header = buffer.getvalue()
    return rows, header


def jsonl_rows(events: list[dict]) -> str:
    """One JSON object a line: the row's columns, with data and metadata as JSON objects."""
    lines = []
    for event in events:
        row = row_of(event)
        # The data and metadata are the very canonical text of the CSV, embedded as objects.
        fields = (
            f"{json.dumps(key)}:{row[key] if key in RAW else json.dumps(row[key])}"
            for key in sorted(COLUMNS)
        )
        lines.append("{" + ",".join(fields) + "}\n")
    return "".join(lines)


def encoder(fmt: str) -> tuple[Callable[[list[dict]], str], str]:
    """Return (rows -> text, header text) for a format."""
    if fmt == EvidenceExport.CSV:
        return csv_writer()
    return jsonl_rows, ""


def file_chunks(queryset, upto: Position, fmt: str, tally: dict) -> Iterator[bytes]:
    """The file's bytes, batch by batch; `tally` ends with its count, hash and last row."""
    encode, header = encoder(fmt)
    digest = hashlib.sha256()
    count, last = 0, START
    if header:
        chunk = header.encode("utf-8")
        digest.update(chunk)
        yield chunk
    for rows in batches(queryset, upto):
        chunk = encode(rows).encode("utf-8")
        digest.update(chunk)
        count += len(rows)
        last = Position(rows[-1]["transaction_id"], rows[-1]["id"])
        yield chunk
    tally.update(row_count=count, sha256=digest.hexdigest(), last=last)


def export_view(model_admin, request, fmt: str):
    if fmt not in CONTENT_TYPES:
        raise Http404("no such export format")
    if not may_export(model_admin, request):
        raise PermissionDenied("only auditors and superusers export evidence")
    query = filters_of(request.GET)
    try:
        queryset = listed_rows(model_admin, request, query)
    except IncorrectLookupParameters:
        return HttpResponseBadRequest("the event list does not take these filters")
    store = get_event_store()
    using = getattr(store.recorder, "using", "default")
    upto = store.recorder.head()  # rows appended from now on are not part of this export
    export_id = uuid.uuid4()
    started_at = timezone.now()
    user = request.user.get_username()

    def stream() -> Iterator[bytes]:
        tally: dict = {}
        yield from file_chunks(queryset, upto, fmt, tally)
        # Reached only when every byte was produced: an interrupted export is not recorded.
        EvidenceExport.objects.using(using).create(
            export_id=export_id, exported_by=user, format=fmt, query_string=query.urlencode(),
            filters={key: query.getlist(key) for key in query},
            as_of_transaction=upto.transaction, as_of_id=upto.id,
            last_transaction=tally["last"].transaction, last_id=tally["last"].id,
            row_count=tally["row_count"], sha256=tally["sha256"], started_at=started_at,
        )  # fmt: skip

    response = StreamingHttpResponse(stream(), content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="evidence-{export_id}.{fmt}"'
    response["X-Evidence-Export-Id"] = str(export_id)
    response["X-Evidence-Manifest"] = reverse(
        f"{model_admin.admin_site.name}:eventsourcing_export_manifest", args=[export_id]
    )
    response["Cache-Control"] = "no-store"
    return response


def manifest_of(export: EvidenceExport, using: str) -> dict:
    digest = latest_digest(using)
    covered = digest is not None and (
        export.row_count == 0 or Position.parse(digest.last_position) >= export.last_position
    )
    return {
        "export_id": str(export.export_id),
        "file": f"evidence-{export.export_id}.{export.format}",
        "format": export.format,
        "columns": list(COLUMNS),
        "exported_by": export.exported_by,
        "started_at": timestamp_text(export.started_at),
        "completed_at": timestamp_text(export.completed_at),
        "filters": export.filters,
        "query_string": export.query_string,
        "as_of_position": str(export.as_of),
        "last_position": str(export.last_position) if export.row_count else None,
        "row_count": export.row_count,
        "sha256": export.sha256,
        "digest": digest.as_dict() if digest is not None else None,
        "digest_covers_all_rows": covered,
    }


def manifest_view(model_admin, request, export_id: uuid.UUID):
    if not may_export(model_admin, request):
        raise PermissionDenied("only auditors and superusers export evidence")
    using = getattr(get_event_store().recorder, "using", "default")
    export = EvidenceExport.objects.using(using).filter(export_id=export_id).first()
    if export is None:
        raise Http404("no completed export has this id")
    manifest = manifest_of(export, using)
    if request.GET.get("proofs") != "1":
        return JsonResponse(manifest, json_dumps_params={"indent": 2, "sort_keys": True})
    if manifest["digest"] is None:
        return JsonResponse({**manifest, "error": "no_digest"}, status=409)
    query = QueryDict(export.query_string)
    try:
        queryset = listed_rows(model_admin, request, query)
    except IncorrectLookupParameters:
        return JsonResponse({**manifest, "error": "filters_no_longer_valid"}, status=409)
    # Proofs are given for the exported rows only: the same filters, read again up to the same
    # head, must still make the very file that was hashed (a filter relative to the current
    # time, such as "last 24 hours", may not).
    tally: dict = {}
    for _ in file_chunks(queryset, export.as_of, export.format, tally):
        pass
    if (tally["row_count"], tally["sha256"]) != (export.row_count, export.sha256):
        return JsonResponse({**manifest, "error": "rows_changed",
                             "message": "the filters no longer select the exported rows"},
                            status=409)  # fmt: skip
    response = StreamingHttpResponse(
        proof_document(manifest, queryset, export.as_of, using), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="evidence-{export_id}.manifest.json"'
    return response


def proof_document(manifest: dict, queryset, upto: Position, using: str) -> Iterator[bytes]:
    """The manifest with `proofs`: one inclusion proof per row, streamed batch by batch."""
    head = json.dumps(manifest, sort_keys=True, indent=2)
    yield (head[:-2] + ',\n  "proofs": [\n').encode("utf-8")
    tree = LedgerTree(using)
    size = manifest["digest"]["tree_size"]
    first = True
    for rows in batches(queryset, upto):
        leaves = tree.leaves_of_events([row["id"] for row in rows])
        parts = []
        for row in rows:
            position = str(Position(row["transaction_id"], row["id"]))
            leaf = leaves.get(row["id"])
            proof: dict = {"position": position, "event_id": row["id"], "event_hash": row["hash"]}
            if leaf is None or leaf.index >= size:
                proof["error"] = "not_sealed" if leaf is None else "not_in_tree"
            else:
                proof.update(
                    leaf_index=leaf.index,
                    tree_size=size,
                    leaf_hash=leaf.hash.hex(),
                    audit_path=[value.hex() for value in tree.inclusion_path(leaf.index, size)],
                )
            parts.append(("    " if first else ",\n    ") + json.dumps(proof, sort_keys=True))
            first = False
        yield "".join(parts).encode("utf-8")
    yield b"\n  ]\n}\n"


@admin.register(EvidenceExport)
class EvidenceExportAdmin(ReadOnlyAdmin):
    """The record of exports, for auditors: read-only, like every record of the audit trail."""

    list_display = ("completed_at", "exported_by", "format", "row_count", "query_string",
                    "sha256", "export_id")  # fmt: skip
    list_filter = ("format",)
    search_fields = ("exported_by",)
