"""Metadata: the request middleware and the explicit context fill who, correlation and trace."""

import re
from types import SimpleNamespace

from django.http import HttpResponse
from django.test import RequestFactory

from eventsourcing_app.core.context import current_metadata, metadata_context
from eventsourcing_app.middleware import EventMetadataMiddleware, trace_id_from

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def run(headers=None, user=None, late_user=None):
    """Pass a request through the middleware; return the metadata an append would get."""
    seen = {}

    def view(request):
        if late_user is not None:
            request.user = late_user  # what DRF does when it authenticates inside the view
        seen.update(current_metadata())
        return HttpResponse("ok")

    request = RequestFactory().post("/api/accounts/", headers=headers or {})
    if user is not None:
        request.user = user
    response = EventMetadataMiddleware(view)(request)
    return seen, response


def user(pk):
    return SimpleNamespace(pk=pk, is_authenticated=True)


def test_headers_are_honoured_and_the_correlation_id_is_echoed():
    seen, response = run(
        {"X-Correlation-ID": "order-42", "X-Request-ID": "req-7", "traceparent": TRACEPARENT},
        user=user(5),
    )
    assert seen == {
        "user_id": "5",
        "correlation_id": "order-42",
        "causation_id": "req-7",
        "trace_id": TRACE_ID,
    }
    assert response["X-Correlation-ID"] == "order-42"


def test_missing_or_malformed_headers_get_fresh_ids():
    seen, response = run(
        {"X-Correlation-ID": "<script>alert(1)</script>", "traceparent": "garbage"}
    )
    assert seen["user_id"] is None
    assert re.fullmatch(r"[0-9a-f-]{36}", seen["correlation_id"])
    assert response["X-Correlation-ID"] == seen["correlation_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", seen["trace_id"])
    assert seen["causation_id"] not in (None, seen["correlation_id"])


def test_a_user_authenticated_inside_the_view_is_recorded():
    anonymous = SimpleNamespace(pk=None, is_authenticated=False)
    seen, _ = run(user=anonymous, late_user=user(9))
    assert seen["user_id"] == "9"


def test_invalid_traceparents_are_ignored():
    assert trace_id_from(TRACEPARENT) == TRACE_ID
    assert trace_id_from(f"ff-{TRACE_ID}-00f067aa0ba902b7-01") is None
    assert trace_id_from(f"00-{'0' * 32}-00f067aa0ba902b7-01") is None
    assert trace_id_from(f"00-{TRACE_ID}-{'0' * 16}-01") is None
    assert trace_id_from(f"00-{TRACE_ID.upper()}-00f067aa0ba902b7-01") is None
    assert trace_id_from(None) is None


def test_explicit_context_nests_and_restores():
    with metadata_context(user_id="ops", correlation_id="nightly-job"):
        with metadata_context(causation_id="event-12"):
            inner = current_metadata()
        outer = current_metadata()
    after = current_metadata()
    assert (inner["user_id"], inner["correlation_id"], inner["causation_id"]) == (
        "ops",
        "nightly-job",
        "event-12",
    )
    assert outer["causation_id"] == "nightly-job"
    assert after["user_id"] is None
    assert after["correlation_id"] != "nightly-job"
