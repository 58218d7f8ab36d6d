"""Canonical JSON for event content and the per-stream SHA-256 chain that makes tampering visible.

The canonical form must give the same bytes for the data a writer passed and for the data the
database hands back, so numbers are written as normalised decimals: PostgreSQL's JSONB keeps
numbers as `numeric` and returns `1e100` as a 101-digit integer and `-0.0` as `0.0`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from eventsourcing_app.errors import InvalidAppend

MAX_DEPTH = 64
NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\]')
SMALL_INT = 10**15


def canonical_json(value: Any, path: str = "data") -> str:
    """Return `value` as canonical JSON, or raise `InvalidAppend` naming the first bad part."""
    parts: list[str] = []
    _encode(value, path, parts.append, 0)
    return "".join(parts)


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


def timestamp_text(moment: dt.datetime) -> str:
    """Return `moment` in UTC with microseconds, the way the chain hashes it."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(
    *,
    aggregate_id: uuid.UUID,
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
    `created_at` is what `timestamp_text` made of the time.
    """
    content = "".join(
        (
            '{"aggregate_id":"',
            str(aggregate_id),
            '","aggregate_type":',
            json.dumps(aggregate_type, ensure_ascii=False),
            ',"created_at":"',
            created_at,
            '","data":',
            canonical_data,
            ',"event_type":',
            json.dumps(event_type, ensure_ascii=False),
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
