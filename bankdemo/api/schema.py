"""What the OpenAPI description says for every view: the error body, its statuses, ids, headers.

The server enforces each pattern here (with `fullmatch`; a zero amount is the domain's 422), so
a request the schema calls invalid is refused, and one it calls valid is refused only for what
no schema can say (funds, versions, a currency's decimal places, credentials).
"""

from __future__ import annotations

import re

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

# An amount: a decimal string below 10**15 with at most 3 decimals (KWD has 3); more decimals
# than the account's currency has is the domain's 422.
POSITIVE_AMOUNT = r"^(?=[0-9.]*[1-9])[0-9]{1,15}(\.[0-9]{1,3})?$"
AMOUNT_OR_ZERO = r"^[0-9]{1,15}(\.[0-9]{1,3})?$"
# If-Match: an account version, quoted or not, optionally weak.
IF_MATCH = r'^[ \t]*(W/)?"?([0-9]{1,9})"?[ \t]*$'
IDEMPOTENCY_KEY = r"^[!-~]{1,200}$"
# Text with a character that is a space in no regex dialect and not an invisible format
# character (zero-width spaces and joiners, direction marks), and no NUL (PostgreSQL refuses it).
INVISIBLE = r"\s\x00\x1c-\x1f\x85\xad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff"
TEXT = rf"^[^\x00]*[^{INVISIBLE}][^\x00]*$"
WHOLE_NUMBER = re.compile(r"[0-9]{1,10}")


def whole_number(text: str) -> int | None:
    """Return `text` as an integer if it is written in ASCII digits only ("5", not "+5", "5.0")."""
    return int(text) if WHOLE_NUMBER.fullmatch(text) else None


class ErrorOut(serializers.Serializer):
    """The JSON body of every refusal (bankdemo/api/errors.py writes it)."""

    code = serializers.CharField(
        help_text="stable and machine-readable: invalid, not_found, insufficient_funds, ..."
    )
    detail = serializers.CharField(help_text="for people")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="400 invalid: the messages for each field, parameter or header at fault",
    )
    current_version = serializers.IntegerField(
        required=False, allow_null=True, help_text="409, 412: the account's version now"
    )


DESCRIPTIONS = {
    400: "invalid input: `fields` names each field, parameter or header at fault",
    401: "not authenticated",
    403: "not allowed: tellers send commands, tellers and auditors read",
    404: "not found",
    409: "another write won the race; retry",
    412: "If-Match names another version (`current_version` says which)",
    413: "a body over the size limit (DATA_UPLOAD_MAX_MEMORY_SIZE)",
    415: "a body in a media type the operation does not take",
    429: "too many requests (token requests per address, commands per user): retry after "
    "`Retry-After` seconds",
    422: "refused by the domain: insufficient_funds, account_closed, balance_not_zero, "
    "currency_mismatch, same_account, invalid_amount (more decimals than the currency has), "
    "balance_limit (the balance would pass 10^16 less one minor unit), "
    "or an Idempotency-Key reused for another request (idempotency_key_reused)",
    503: "the database cannot be reached; retry after `Retry-After` seconds",
}


def errors(*statuses: int, described: dict[int, str] | None = None) -> dict:
    """Return the error responses for `statuses` (and `described`), each with the error body.

    Every operation can answer 401 and 503 (authentication and the database come first); one
    that takes a body (and so may answer 415) may answer 413 too.
    """
    described = described or {}
    sized = {413} if 415 in statuses else set()
    codes = sorted({401, 503, *sized, *statuses, *described})
    return {
        code: OpenApiResponse(ErrorOut, description=described.get(code, DESCRIPTIONS[code]))
        for code in codes
    }


def object_id(name: str, what: str) -> OpenApiParameter:
    """The id in a URL; a malformed one names nothing, so it is a 404, never a 400."""
    return OpenApiParameter(
        name, OpenApiTypes.UUID, OpenApiParameter.PATH, description=f"the {what}'s id"
    )


IDEMPOTENCY_KEY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "pattern": IDEMPOTENCY_KEY},
    OpenApiParameter.HEADER,
    description="1 to 200 printable ASCII characters; a retry with the same key and body "
    "returns the first response",
)
IF_MATCH_HEADER = OpenApiParameter(
    "If-Match",
    {"type": "string", "pattern": IF_MATCH},
    OpenApiParameter.HEADER,
    description='"<version>": run only if the account is at that version (else 412); without '
    "it the server retries on conflicts",
)
