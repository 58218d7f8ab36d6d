"""Command endpoints: parse, call one service, answer with the new version and position."""

from __future__ import annotations

import re
import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from bankdemo import services
from bankdemo.api.idempotency import idempotent
from bankdemo.domain import MINOR_UNITS
from eventsourcing_app.domain import AggregateNotFound

AMOUNT = r"^[0-9]{1,15}(\.[0-9]{1,3})?$"
IF_MATCH = re.compile(r'^\s*(?:W/)?"?([0-9]{1,9})"?\s*$')


class DecimalString(serializers.RegexField):
    """An amount as a decimal string ("12.50"): JSON numbers are refused, floats lose cents."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("help_text", 'a decimal string such as "12.50"')
        super().__init__(AMOUNT, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class OpenAccountIn(serializers.Serializer):
    owner = serializers.CharField(max_length=200)
    currency = serializers.ChoiceField(choices=sorted(MINOR_UNITS))
    overdraft_limit = DecimalString(required=False, default="0")


class AmountIn(serializers.Serializer):
    amount = DecimalString()


class TransferIn(serializers.Serializer):
    source_id = serializers.UUIDField()
    destination_id = serializers.UUIDField()
    amount = DecimalString()


class CommandOut(serializers.Serializer):
    id = serializers.UUIDField()
    version = serializers.IntegerField()
    position = serializers.CharField(help_text="log position of the last event appended")
    balance = serializers.CharField()


class TransferOut(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()


class ErrorOut(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    current_version = serializers.IntegerField(required=False)


COMMON_ERRORS = {
    400: OpenApiResponse(ErrorOut, description="invalid input (`fields` names them)"),
    401: OpenApiResponse(ErrorOut, description="not authenticated"),
    403: OpenApiResponse(ErrorOut, description="not a teller"),
    422: OpenApiResponse(
        ErrorOut,
        description="refused by the domain (insufficient_funds, account_closed, "
        "balance_not_zero, currency_mismatch, invalid_amount), or an Idempotency-Key reused "
        "for another request (idempotency_key_reused)",
    ),
}
ACCOUNT_ERRORS = {
    **COMMON_ERRORS,
    404: OpenApiResponse(ErrorOut, description="no such account"),
    409: OpenApiResponse(ErrorOut, description="another write won the race; retry"),
    412: OpenApiResponse(
        ErrorOut, description="If-Match names another version (`current_version` says which)"
    ),
}
HEADERS = [
    OpenApiParameter(
        "Idempotency-Key",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        description="a retry with the same key and body returns the first response",
    ),
]
IF_MATCH_HEADER = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description='"<version>": run only if the account is at that version (else 412); without '
    "it the server retries on conflicts",
)


def parse(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def expected_version(request) -> int | None:
    header = request.headers.get("If-Match")
    if header is None:
        return None
    match = IF_MATCH.match(header)
    if not match:
        raise ValidationError({"If-Match": ['expected a version such as "3"']})
    return int(match.group(1))


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
    @extend_schema(
        request=OpenAccountIn,
        responses={201: CommandOut, **COMMON_ERRORS},
        parameters=HEADERS,
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


def account_schema(serializer_class, summary: str):
    return extend_schema(
        request=serializer_class,
        responses={200: CommandOut, **ACCOUNT_ERRORS},
        parameters=[*HEADERS, IF_MATCH_HEADER],
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


class Close(AccountCommand):
    service = staticmethod(services.account_close)
    serializer_class = None

    @account_schema(None, "Close an account at zero balance")
    @idempotent
    def post(self, request, account_id: str):
        return self.run(request, account_id)


class RequestTransfer(APIView):
    @extend_schema(
        request=TransferIn,
        responses={
            202: TransferOut,
            **COMMON_ERRORS,
            404: OpenApiResponse(ErrorOut, description="no such source or destination account"),
        },
        parameters=HEADERS,
        summary="Request a transfer (the saga moves the money)",
    )
    @idempotent
    def post(self, request):
        values = parse(TransferIn, request)
        transfer, _ = services.transfer_request(**values)
        response = Response({"id": str(transfer.id), "status": transfer.status}, status=202)
        response["Location"] = f"/api/transfers/{transfer.id}/"
        return response
