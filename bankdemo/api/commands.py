"""Command endpoints: parse, call one service, answer with the new version and position."""

from __future__ import annotations

import re
import uuid

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.fields import empty
from rest_framework.response import Response
from rest_framework.utils import html
from rest_framework.views import APIView

from bankdemo import services
from bankdemo.api import schema
from bankdemo.api.idempotency import idempotent
from bankdemo.api.throttles import CommandThrottle
from bankdemo.domain import MINOR_UNITS
from eventsourcing_app.domain import AggregateNotFound

IF_MATCH = re.compile(schema.IF_MATCH)


class PatternField(serializers.RegexField):
    """A string, as sent (never trimmed, never a number), that `pattern` matches in full."""

    def __init__(self, pattern: str, **kwargs) -> None:
        super().__init__(pattern, trim_whitespace=False, **kwargs)
        self.pattern = re.compile(pattern)

    def get_value(self, dictionary):
        # DRF reads a blank optional form field as absent (then the default applies): it is a
        # value the pattern refuses.
        if html.is_html_input(dictionary) and dictionary.get(self.field_name) == "":
            return ""
        return super().get_value(dictionary)

    def to_internal_value(self, data):
        if not isinstance(data, str) or not self.pattern.fullmatch(data):
            self.fail("invalid")
        return data


POSITIVE = 'a positive decimal string such as "12.50"'
MINOR_UNITS_NOTE = "; more decimals than the currency has is a 422 invalid_amount"


class Amount(PatternField):
    """An amount as a decimal string ("12.50"): JSON numbers are refused, floats lose cents.

    More decimals than the account's currency has is the domain's refusal (422 invalid_amount).
    """

    default_error_messages = {"invalid": 'Give a decimal string such as "12.50".'}

    def __init__(self, **kwargs) -> None:
        kwargs["help_text"] = kwargs.get("help_text", POSITIVE) + MINOR_UNITS_NOTE
        super().__init__(schema.AMOUNT_OR_ZERO, **kwargs)


@extend_schema_field({"type": "string", "pattern": schema.POSITIVE_AMOUNT})
class PositiveAmount(Amount):
    """An amount to move. The schema says positive; the serializer checks the shape and the
    domain refuses a zero amount (422 invalid_amount), as it always has."""


REASON_MAX = 500
NO_NUL = r"^[^\x00]*$"
BLANK = re.compile(rf"[{schema.INVISIBLE}]*")
REASON_HELP = (
    f"why, in a person's words (at most {REASON_MAX} characters): recorded in the metadata of "
    "the events the command appends"
)


@extend_schema_field({"type": "string", "pattern": NO_NUL, "maxLength": REASON_MAX})
class Reason(PatternField):
    """Why a command is given: optional free text, kept with its events (surrounding spaces
    dropped; blank records none)."""

    default_error_messages = {"invalid": "Give text without NUL characters."}

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("help_text", REASON_HELP)
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        super().__init__(NO_NUL, max_length=REASON_MAX, **kwargs)


@extend_schema_field({"type": "string", "pattern": schema.TEXT, "maxLength": REASON_MAX})
class RequiredReason(Reason):
    """A reason that must be given: absent, null or blank (nothing visible) is the domain's
    422 reason_required, not a 400 about the field's shape."""

    def __init__(self, **kwargs) -> None:
        required = f"required: {REASON_HELP}; absent or blank is a 422 reason_required"
        kwargs.setdefault("help_text", required)
        super().__init__(required=True, allow_blank=False, **kwargs)

    def run_validation(self, data=empty):
        if data is empty or data is None or (isinstance(data, str) and BLANK.fullmatch(data)):
            raise services.ReasonRequired("closing an account needs a reason: say why")
        return super().run_validation(data)


class OpenAccountIn(serializers.Serializer):
    owner = PatternField(
        schema.TEXT,
        max_length=200,
        help_text="the owner's name (surrounding spaces are dropped)",
        error_messages={"invalid": "Give a name with a visible character and no NUL."},
    )
    currency = serializers.ChoiceField(choices=sorted(MINOR_UNITS))
    overdraft_limit = Amount(
        help_text='how far below zero the balance may go, such as "100.00"',
        required=False,
        default="0",
    )
    reason = Reason()


class AmountIn(serializers.Serializer):
    amount = PositiveAmount()
    reason = Reason()


class CloseIn(serializers.Serializer):
    reason = RequiredReason()


class TransferIn(serializers.Serializer):
    source_id = serializers.UUIDField()
    destination_id = serializers.UUIDField()
    amount = PositiveAmount()
    reason = Reason(help_text=f"{REASON_HELP}, and of the saga's steps that follow")


class CommandOut(serializers.Serializer):
    id = serializers.UUIDField()
    version = serializers.IntegerField()
    position = serializers.CharField(help_text="log position of the last event appended")
    balance = serializers.CharField()


class TransferOut(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()


COMMAND_ERRORS = schema.errors(400, 403, 415, 422, 429)
ACCOUNT_ERRORS = schema.errors(
    400, 403, 409, 412, 422, 429, described={404: "no such account (or a malformed id)"}
)
ACCOUNT_ID = schema.object_id("account_id", "account")


def parse(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def expected_version(request) -> int | None:
    header = request.headers.get("If-Match")
    if header is None:
        return None
    match = IF_MATCH.fullmatch(header)
    if not match:
        raise ValidationError({"If-Match": ['expected a version such as "3"']})
    return int(match.group(2))


def account_id_from(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise AggregateNotFound(f"no account {value!r}") from None


def answer(account, stored, status_code=status.HTTP_200_OK, **headers) -> Response:
    response = Response(
        {
            "id": str(account.id),
            "version": account.version,
            "position": str(stored[-1].position) if stored else None,
            "balance": str(account.balance),
        },
        status=status_code,
    )
    response["ETag"] = f'"{account.version}"'
    for name, value in headers.items():
        response[name] = value
    return response


class OpenAccount(APIView):
    throttle_classes = [CommandThrottle]

    @extend_schema(
        request=OpenAccountIn,
        responses={201: CommandOut, **COMMAND_ERRORS},
        parameters=[schema.IDEMPOTENCY_KEY_HEADER],
        summary="Open an account",
    )
    @idempotent
    def post(self, request):
        values = parse(OpenAccountIn, request)
        account, stored = services.account_open(**values)
        return answer(
            account, stored, status.HTTP_201_CREATED, Location=f"/api/accounts/{account.id}/"
        )


class AccountCommand(APIView):
    """A command on one account; subclasses name the service and the input."""

    throttle_classes = [CommandThrottle]

    service = None
    serializer_class = AmountIn

    def run(self, request, account_id: str) -> Response:
        values = parse(self.serializer_class, request) if self.serializer_class else {}
        account, stored = type(self).service(
            account_id=account_id_from(account_id),
            expected_version=expected_version(request),
            **values,
        )
        return answer(account, stored)


def account_schema(serializer_class, summary: str, errors: dict | None = None):
    body_errors = schema.errors(415) if serializer_class else {}
    return extend_schema(
        request=serializer_class,
        responses={200: CommandOut, **ACCOUNT_ERRORS, **body_errors, **(errors or {})},
        parameters=[ACCOUNT_ID, schema.IDEMPOTENCY_KEY_HEADER, schema.IF_MATCH_HEADER],
        summary=summary,
    )


class Deposit(AccountCommand):
    service = staticmethod(services.account_deposit)

    @account_schema(AmountIn, "Deposit money")
    @idempotent
    def post(self, request, account_id: str):
        return self.run(request, account_id)


class Withdraw(AccountCommand):
    service = staticmethod(services.account_withdraw)

    @account_schema(AmountIn, "Withdraw money (within balance plus overdraft)")
    @idempotent
    def post(self, request, account_id: str):
        return self.run(request, account_id)


CLOSE_ERRORS = schema.errors(
    422,
    described={
        422: f"{schema.DESCRIPTIONS[422]}; closing needs a reason: absent or blank is "
        "reason_required"
    },
)


class Close(AccountCommand):
    service = staticmethod(services.account_close)
    serializer_class = CloseIn

    @account_schema(CloseIn, "Close an account at zero balance, saying why", CLOSE_ERRORS)
    @idempotent
    def post(self, request, account_id: str):
        return self.run(request, account_id)


class RequestTransfer(APIView):
    throttle_classes = [CommandThrottle]

    @extend_schema(
        request=TransferIn,
        responses={
            202: TransferOut,
            **schema.errors(
                400, 403, 415, 422, 429, described={404: "no such source or destination"}
            ),
        },
        parameters=[schema.IDEMPOTENCY_KEY_HEADER],
        summary="Request a transfer (the saga moves the money)",
    )
    @idempotent
    def post(self, request):
        values = parse(TransferIn, request)
        transfer, _ = services.transfer_request(**values)
        response = Response({"id": str(transfer.id), "status": transfer.status}, status=202)
        response["Location"] = f"/api/transfers/{transfer.id}/"
        return response
