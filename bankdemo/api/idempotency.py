"""`Idempotency-Key`: a retried command gets the first response and appends nothing.

Only outcomes a retry cannot change are remembered: successes and refusals of the request.
The key, a fingerprint of the request and the response are stored in the same transaction as the
command's events, so a key is never recorded for events that did not commit, nor events
committed without their key. Two requests racing with one key: the loser's transaction rolls
back (events included) and it answers with the winner's response.
"""

from __future__ import annotations

import functools
import hashlib
import re

from django.db import IntegrityError, OperationalError, connections, router, transaction
from rest_framework import status
from rest_framework.response import Response

from bankdemo.api.errors import error
from bankdemo.api.schema import IDEMPOTENCY_KEY
from bankdemo.models import IdempotencyKey
from eventsourcing_app.backends import statements

HEADER = "Idempotency-Key"
KEY = re.compile(IDEMPOTENCY_KEY)
KEPT_HEADERS = ("ETag", "Location")


class _Replay(Exception):
    def __init__(self, stored: IdempotencyKey) -> None:
        self.stored = stored


def idempotent(handler):
    """Wrap a DRF command handler `(self, request, *args, **kwargs) -> Response`."""

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        if not KEY.fullmatch(key):
            return error(
                status.HTTP_400_BAD_REQUEST,
                "invalid_idempotency_key",
                f"{HEADER} must be 1 to 200 printable ASCII characters",
            )
        fingerprint = _fingerprint(request)
        try:
            with transaction.atomic():
                stored = _stored(request.user, key)
                if stored is not None:
                    raise _Replay(stored)
                try:
                    response = handler(view, request, *args, **kwargs)
                except Exception as exc:
                    response = view.handle_exception(exc)
                if not _final(response.status_code):
                    return response  # a retry with the same key may fare otherwise: keep none
                if transaction.get_rollback():
                    return _unrecorded(response)
                _remember(request.user, key, fingerprint, response)
                return response
        except _Replay as replay:
            return _replayed(replay.stored, fingerprint)
        except IntegrityError:
            stored = _stored(request.user, key)
            if stored is None:
                raise
            return _replayed(stored, fingerprint)

    return wrapper


_FIELDS = [IdempotencyKey._meta.get_field(name)
           for name in ("id", "user", "key", "request_hash", "status_code", "response", "headers",
                        "created_at")]  # fmt: skip


def _stored(user, key: str) -> IdempotencyKey | None:
    """The user's record of `key`, if any (a statement prepared once: see `statements`)."""
    using = router.db_for_read(IdempotencyKey)
    connection = connections[using]
    meta, quote = IdempotencyKey._meta, connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in _FIELDS)
    user_column, key_column = (quote(meta.get_field(name).column) for name in ("user", "key"))
    found = statements.fetch(
        using,
        f"SELECT {columns} FROM {quote(meta.db_table)} WHERE {user_column} = %s "
        f"AND {key_column} = %s",
        [user.pk, key],
    )
    return statements.instance(IdempotencyKey, _FIELDS, found[0], using) if found else None


def _remember(user, key: str, fingerprint: str, response: Response) -> None:
    record = IdempotencyKey(
        user=user,
        key=key,
        request_hash=fingerprint,
        status_code=response.status_code,
        response=response.data,
        headers={h: response[h] for h in KEPT_HEADERS if h in response},
    )
    statements.insert(IdempotencyKey, [record], router.db_for_write(IdempotencyKey))


def _unrecorded(response: Response) -> Response:
    """The answer when the command's transaction cannot commit any more: Django marks it so
    when undoing a savepoint failed (the connection was cut as a refusal unwound). Nothing the
    command wrote stands and its key cannot be recorded; a refusal is still the answer, but a
    success would claim what is being rolled back, so the database's failure is raised instead
    (answered 503 by `DatabaseUnavailableMiddleware`: the client retries with the same key)."""
    if response.status_code >= 400:
        return response
    raise OperationalError("the command's transaction was lost before it could commit")


# Answers a retry of the same request may change: not remembered, so the key stays free for it.
RETRYABLE = frozenset({401, 403, 409, 429})


def _final(status_code: int) -> bool:
    """Tell whether a retry of the same request must get this answer again: a success, or a
    refusal of the request itself (malformed, naming nothing, a stale If-Match, refused by
    the domain). A lost race (409), a throttle (429), credentials or rights that may be
    fixed (401, 403) and server or database failures (5xx) may go otherwise next time."""
    return status_code < 500 and status_code not in RETRYABLE


def _fingerprint(request) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.path, request.headers.get("If-Match", "")):
        digest.update(part.encode() + b"\0")
    digest.update(request.body)
    return digest.hexdigest()


def _replayed(stored: IdempotencyKey, fingerprint: str) -> Response:
    if stored.request_hash != fingerprint:
        return error(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            f"this {HEADER} was used for a different request",
        )
    response = Response(stored.response, status=stored.status_code)
    for name, value in stored.headers.items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    return response
