"""Who and why: the metadata every appended event carries, kept in a context variable.

Request middleware fills it from the HTTP request; management commands, sagas and tests set it
explicitly with `metadata_context(...)`. Values may be callables, resolved at append time, so a
user authenticated late in the request (as Django REST framework does) is still recorded.

Who: `user_id` is the stable key of the user, `username` the name they had when the event was
appended (users are renamed and deleted; the event keeps who it was then). Why: `reason`, the
free text a command was given. The standard keys are always present (None when unknown); any
other key whose value resolves to None is left out.
"""

from __future__ import annotations

import contextvars
import secrets
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

STANDARD_KEYS = ("user_id", "correlation_id", "causation_id", "trace_id")
# What a command carries beside the standard keys, recorded only when set.
USERNAME, REASON = "username", "reason"

_metadata: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "eventsourcing_metadata", default=MappingProxyType({})
)


def new_correlation_id() -> str:
    """Return a fresh correlation id."""
    return str(uuid.uuid4())


def new_trace_id() -> str:
    """Return a fresh W3C trace id: 32 lowercase hex digits, not all zero."""
    return secrets.token_hex(16)


@contextmanager
def metadata_context(**values: Any) -> Iterator[None]:
    """Set metadata for every event appended inside the block, over what is already set."""
    token = _metadata.set({**_metadata.get(), **values})
    try:
        yield
    finally:
        _metadata.reset(token)


def current_metadata() -> dict[str, Any]:
    """Return the metadata for an append made now, generating the ids nobody set.

    Outside any context an append starts its own correlation: the correlation id is new and the
    causation id is the correlation id, as for the first message of a conversation.
    """
    resolved = {key: _resolve(value) for key, value in _metadata.get().items()}
    resolved = {
        key: value for key, value in resolved.items() if value is not None or key in STANDARD_KEYS
    }
    resolved.setdefault("user_id", None)
    if not resolved.get("correlation_id"):
        resolved["correlation_id"] = new_correlation_id()
    if not resolved.get("causation_id"):
        resolved["causation_id"] = resolved["correlation_id"]
    if not resolved.get("trace_id"):
        resolved["trace_id"] = new_trace_id()
    return resolved


def current_value(key: str) -> Any:
    """Return what the context sets for `key` now (None when nothing does); generate nothing."""
    return _resolve(_metadata.get().get(key))


def _resolve(value: Any) -> Any:
    return value() if isinstance(value, Callable) else value
