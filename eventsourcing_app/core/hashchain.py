"""Canonical JSON for event content and the per-stream SHA-256 chain that makes tampering visible.

The canonical form must give the same bytes for the data a writer passed and for the data the
database hands back, so numbers are written as normalised decimals: PostgreSQL's JSONB keeps
numbers as `numeric` and returns `1e100` as a 101-digit integer and `-0.0` as `0.0`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from eventsourcing_app.core.errors import InvalidAppend

MAX_DEPTH = 64
NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\]')
SMALL_INT = 10**15


class _Unusual(Exception):
    """The fast encoder met something it leaves to the careful one (a bad value, a subclass)."""


def canonical_json(value: Any, path: str = "data") -> str:
    """Return `value` as canonical JSON, or raise `InvalidAppend` naming the first bad part."""
    text = fast_canonical_json(value)
    if text is not None:
        return text
    parts: list[str] = []
    _encode(value, path, parts.append, 0)
    return "".join(parts)


def fast_canonical_json(value: Any) -> str | None:
    """Return `value` as canonical JSON, or None when it holds something unusual or bad."""
    try:
        return _fast(value, 0)
    except _Unusual:
        return None


def fast_canonical_object(value: dict, known: Mapping[str, str]) -> str | None:
    """Return the dict `value` as canonical JSON, taking the canonical text of the values of
    `known`'s keys as given; None when it holds something unusual or bad."""
    try:
        for key in value:
            if type(key) is not str:
                return None
        items = []
        for key in sorted(value):
            text = known.get(key)
            items.append(f"{_fast(key, 0)}:{_fast(value[key], 1) if text is None else text}")
        return "{" + ",".join(items) + "}"
    except _Unusual:
        return None


def _fast(value: Any, depth: int) -> str:
    """The common case of `_encode`, for exact dicts, lists, strings and numbers: same output.

    It keeps no path for messages; anything it does not take on raises `_Unusual`, and the
    careful encoder starts over, with the path, on that value.
    """
    kind = type(value)
    if kind is str:
        if NEEDS_ESCAPE.search(value) is None:
            return f'"{value}"'
        if "\x00" in value:
            raise _Unusual
        return json.dumps(value, ensure_ascii=False)
    if kind is dict:
        if depth >= MAX_DEPTH:
            raise _Unusual
        items = []
        for key in value:
            if type(key) is not str:
                raise _Unusual
        for key in sorted(value):
            items.append(f"{_fast(key, depth)}:{_fast(value[key], depth + 1)}")
        return "{" + ",".join(items) + "}"
    if kind is int:
        if value % 10 and -SMALL_INT < value < SMALL_INT:
            return str(value)
        return _number(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is list or kind is tuple:
        if depth >= MAX_DEPTH:
            raise _Unusual
        return "[" + ",".join([_fast(item, depth + 1) for item in value]) + "]"
    if kind is float and math.isfinite(value):
        return _number(value)
    raise _Unusual


def _number(value: int | float) -> str:
    if isinstance(value, int) and value % 10 and -SMALL_INT < value < SMALL_INT:
        return str(value)  # already what normalising would give, without the Decimal
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if number == 0:
        return "0"
    return str(number.normalize())


def _encode(value: Any, path: str, out, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidAppend(f"{path} is nested more than {MAX_DEPTH} levels deep")
    if value is None:
        out("null")
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif isinstance(value, str):
        if "\x00" in value:
            raise InvalidAppend(f"{path} contains a NUL character, which JSON columns cannot hold")
        out(
            f'"{value}"'
            if not NEEDS_ESCAPE.search(value)
            else json.dumps(value, ensure_ascii=False)
        )
    elif isinstance(value, int):
        out(_number(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidAppend(f"{path} is {value!r}, which is not a JSON number")
        out(_number(value))
    elif isinstance(value, Mapping):
        out("{")
        keys = list(value)
        for key in keys:
            if not isinstance(key, str):
                raise InvalidAppend(f"{path} has the key {key!r}; JSON object keys must be strings")
        for index, key in enumerate(sorted(keys)):
            if index:
                out(",")
            _encode(key, f"{path}[{key!r}]", out, depth + 1)
            out(":")
            _encode(value[key], f"{path}[{key!r}]", out, depth + 1)
        out("}")
    elif isinstance(value, (list, tuple)):
        out("[")
        for index, item in enumerate(value):
            if index:
                out(",")
            _encode(item, f"{path}[{index}]", out, depth + 1)
        out("]")
    else:
        raise InvalidAppend(
            f"{path} is a {type(value).__name__}, which is not JSON-serialisable "
            "(convert Decimal, datetime and UUID values to strings before appending)"
        )


@functools.lru_cache(maxsize=1024)
def json_name(name: str) -> str:
    """A type name as a JSON string: the same few names recur in every append."""
    return json.dumps(name, ensure_ascii=False)


def timestamp_text(moment: dt.datetime) -> str:
    """Return `moment` in UTC with microseconds, the way the chain hashes it."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(
    *,
    aggregate_id: uuid.UUID | str,
    aggregate_type: str,
    version: int,
    event_type: str,
    schema_version: int,
    canonical_data: str,
    canonical_metadata: str,
    created_at: str,
    previous_hash: str,
) -> str:
    """Return the hex SHA-256 of an event's content chained to the previous event's hash.

    `canonical_data` and `canonical_metadata` are what `canonical_json` made of them, and
    `created_at` is what `timestamp_text` made of the time; `aggregate_id` may come as its
    canonical text (`str(uuid)`), computed once for many events.
    """
    content = "".join(
        (
            '{"aggregate_id":"',
            str(aggregate_id),
            '","aggregate_type":',
            json_name(aggregate_type),
            ',"created_at":"',
            created_at,
            '","data":',
            canonical_data,
            ',"event_type":',
            json_name(event_type),
            ',"metadata":',
            canonical_metadata,
            ',"previous_hash":"',
            previous_hash,
            '","schema_version":',
            str(schema_version),
            ',"version":',
            str(version),
            "}",
        )
    )
    try:
        encoded = content.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidAppend(f"event content is not valid Unicode text: {exc.reason}") from None
    return hashlib.sha256(encoded).hexdigest()
