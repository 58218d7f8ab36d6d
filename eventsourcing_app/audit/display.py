"""How the audit pages show values: one date form (UTC, ISO 8601), JSON pretty and sorted,
amounts in their currency's decimal places and an empty value as "(empty)". Used by the admins
and, as template filters (`{% load audit_format %}`), by the audit templates."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

from django.utils.html import format_html

DATE_FORMAT = "%Y-%m-%d %H:%M:%SZ"  # 2026-12-01 13:45:07Z
EMPTY = "(empty)"  # a state's field that holds nothing: never Python's `None`


def utc(value: Any) -> str:
    """A date-time as `2026-12-01 13:45:07Z` (UTC; a naive one is taken as UTC), a date as
    `2026-12-01`, nothing as "-"."""
    if value is None or value == "":
        return "-"
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).strftime(DATE_FORMAT)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return utc(value)
    return repr(value)


def pretty_json(value: Any) -> str:
    """JSON with keys sorted, indented by 2: `null`, `true` and `"text"`, never Python's repr."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=_default)


def json_block(value: Any):
    """`pretty_json` in a monospaced block (the audit CSS's `es-json`)."""
    return format_html('<pre class="es-json">{}</pre>', pretty_json(value))


def value_text(value: Any) -> str:
    """A field of an aggregate's state as a person reads it: nothing (None or a blank string)
    as "(empty)", a list or a mapping as `pretty_json`, anything else as its text."""
    if value is None or value == "":
        return EMPTY
    if isinstance(value, dict | list | tuple):
        return pretty_json(value)
    return str(value)


def amount_text(amount: Any, places: int | None) -> str:
    """`amount` with exactly `places` decimal places (its own when None) and its thousands
    separated by commas: `25,145.23`, `-1,200`, `0.500`."""
    if amount is None or amount == "":
        return "-"
    value = Decimal(str(amount))
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places))
    return f"{value:,f}"


def amount_cell(amount: Any, places: int | None):
    """An amount right-aligned in a list's column (the audit CSS's `es-amount`)."""
    return format_html('<span class="es-amount">{}</span>', amount_text(amount, places))
