"""Turn domain and store errors into JSON responses with a stable `code`; never a 500 for them."""

from __future__ import annotations

from django.http import Http404
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler

from bankdemo.api.integrity import IntegrityBroken
from bankdemo.domain import Refusal
from bankdemo.services import StaleVersion
from eventsourcing_app.core.errors import ConcurrencyError, InvalidAppend
from eventsourcing_app.domain import AggregateNotFound
from eventsourcing_app.ledger.proofs import ProofUnavailable
from eventsourcing_app.ledger.tree import LedgerDamaged

# A question the ledger cannot answer is a 404 (not sealed yet, beyond the tree), except when
# the server lacks its signing key: no request can change that, so it is the server's fault.
UNAVAILABLE_STATUS = {"no_signing_key": status.HTTP_503_SERVICE_UNAVAILABLE}


def error(status_code: int, code: str, detail: str, **extra) -> Response:
    return Response({"code": code, "detail": detail, **extra}, status=status_code)


def handle(exc, context):
    """DRF's handler, plus the bank's errors, each with a machine-readable `code`."""
    if isinstance(exc, Refusal):
        return error(status.HTTP_422_UNPROCESSABLE_ENTITY, exc.code, exc.message)
    if isinstance(exc, AggregateNotFound):
        return error(status.HTTP_404_NOT_FOUND, "not_found", str(exc))
    if isinstance(exc, ConcurrencyError):
        stale = isinstance(exc, StaleVersion)  # If-Match named another version: 412
        response = error(
            status.HTTP_412_PRECONDITION_FAILED if stale else status.HTTP_409_CONFLICT,
            "version_mismatch" if stale else "version_conflict",
            str(exc),
            current_version=exc.actual,
        )
        if exc.actual is not None:
            response["ETag"] = f'"{exc.actual}"'
        return response
    if isinstance(exc, InvalidAppend):
        return error(status.HTTP_400_BAD_REQUEST, "invalid", str(exc))
    if isinstance(exc, IntegrityBroken):
        return error(
            status.HTTP_409_CONFLICT, "integrity_broken", str(exc), first_broken=exc.first_broken()
        )
    if isinstance(exc, ProofUnavailable):
        return error(
            UNAVAILABLE_STATUS.get(exc.code, status.HTTP_404_NOT_FOUND), exc.code, exc.message
        )
    if isinstance(exc, LedgerDamaged):
        return error(
            status.HTTP_409_CONFLICT,
            "ledger_damaged",
            f"the ledger is damaged: {exc}; `manage.py verify_events` says what changed",
        )
    response = exception_handler(exc, context)
    if isinstance(exc, ValidationError) and not isinstance(getattr(response, "data", {}), dict):
        response.data = {"non_field_errors": response.data}  # raised with a message, not per field
    if response is not None and isinstance(response.data, dict) and "code" not in response.data:
        if isinstance(exc, ValidationError):
            response.data = {"code": "invalid", "detail": "invalid input", "fields": response.data}
        elif isinstance(exc, Http404):
            response.data = {"code": "not_found", **response.data}
        elif isinstance(exc, APIException):
            codes = exc.get_codes()
            response.data = {"code": codes if isinstance(codes, str) else "error", **response.data}
    return response
