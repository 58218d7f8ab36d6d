"""Fill the event metadata context from each HTTP request: who, correlation and trace."""

from __future__ import annotations

import logging
import re
import uuid

from django.core.exceptions import BadRequest
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

from eventsourcing_app.core.context import (
    current_value,
    metadata_context,
    new_correlation_id,
    new_trace_id,
)

CORRELATION_HEADER = "X-Correlation-ID"
REQUEST_ID_HEADER = "X-Request-ID"
# A correlation id travels between systems; accept the usual id shapes and nothing that could
# smuggle markup or control characters into logs and pages.
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")
TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def trace_id_from(traceparent: str | None) -> str | None:
    """Return the trace id of a valid W3C `traceparent` header, or None."""
    match = TRACEPARENT.match((traceparent or "").strip())
    if not match:
        return None
    version, trace_id, parent_id, _flags = match.groups()
    if version == "ff" or trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return trace_id


def safe_id(value: str | None) -> str | None:
    """Return `value` if it is a well-formed id, else None."""
    value = (value or "").strip()
    return value if SAFE_ID.match(value) else None


class EventMetadataMiddleware:
    """Record on every event appended during a request who made it and which request caused it.

    `X-Correlation-ID` is honoured (or generated) and echoed on the response; the trace id comes
    from a W3C `traceparent` header (or is generated); the causation id is the request's own id
    (`X-Request-ID` or generated). The user (its id and its username at the time) is read when
    the event is appended, so users that Django REST framework authenticates inside the view are
    recorded too. A command's `reason` is the view's to add (see bankdemo.services).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        correlation_id = safe_id(request.headers.get(CORRELATION_HEADER)) or new_correlation_id()
        request_id = safe_id(request.headers.get(REQUEST_ID_HEADER)) or str(uuid.uuid4())
        trace_id = trace_id_from(request.headers.get("traceparent")) or new_trace_id()
        request.correlation_id = correlation_id
        with metadata_context(
            user_id=lambda: _user_id(request),
            username=lambda: _username(request),
            correlation_id=correlation_id,
            causation_id=request_id,
            trace_id=trace_id,
        ):
            response = self.get_response(request)
        response[CORRELATION_HEADER] = correlation_id
        return response


def _user_id(request) -> str | None:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return str(user.pk)


def _username(request) -> str | None:
    """The user's name now: an event keeps it beside the id, which outlives renames."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not hasattr(user, "get_username"):
        return None
    return user.get_username() or None


class RefuseNulMiddleware:
    """Answer 400 to a request whose path or query string holds a NUL character.

    PostgreSQL text cannot hold NUL, so such a value reaching a query (an admin list filter, a
    search, a correlation id in a URL) would fail inside the database driver as a 500. Nothing
    legitimate carries one; the project's 400 handler renders the refusal.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            raise BadRequest("the request holds a NUL character, which no value here may contain")
        return self.get_response(request)


class CorrelationIdFilter(logging.Filter):
    """Give every log record `correlation_id`: the request's (set by EventMetadataMiddleware,
    which Django passes with its request errors), the one in the metadata context, or "-"."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        record.correlation_id = (
            getattr(request, "correlation_id", None) or current_value("correlation_id") or "-"
        )
        return True


class DatabaseUnavailableMiddleware:
    """Answer 503 JSON, without a traceback, while the database cannot be reached.

    Nothing partial is written: the request's transaction commits whole or not at all. Whether
    it committed is not always known: when the connection is cut during the COMMIT (a database
    restart), the commit may have landed before its acknowledgement was lost, so a client
    retries with the same Idempotency-Key and gets the first outcome. Django reconnects on the
    next request once the database is back (persistent connections are health-checked).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        logging.getLogger("eventsourcing").warning("database unavailable: %s", exception)
        response = JsonResponse(
            {"code": "database_unavailable", "detail": "the database cannot be reached; retry"},
            status=503,
        )
        response["Retry-After"] = "5"
        return response
