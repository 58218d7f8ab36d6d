"""Read endpoints: accounts and transfers from the read models, history from the event log."""

from __future__ import annotations

import uuid
from decimal import Decimal

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from bankdemo.api import schema
from bankdemo.api.filters import AccountFilter, EventFilter, StateQuery, ordering_parameter
from bankdemo.api.integrity import INTEGRITY_BROKEN, verified_replay
from bankdemo.api.pagination import (
    AccountPagination,
    LogPagination,
    StreamPagination,
    up_to_position,
)
from bankdemo.domain import MINOR_UNITS, BankAccount, Transfer
from bankdemo.models import AccountBalance, TransferStatus
from eventsourcing_app.core.mapper import EventMapper
from eventsourcing_app.domain import AggregateNotFound
from eventsourcing_app.models import Event
from eventsourcing_app.privacy.disclosure import Disclosure, personal_keys
from eventsourcing_app.projections.status import projection_status, projection_statuses
from eventsourcing_app.wiring import get_event_store

TRANSFERS_PROJECTION = "bank.transfers"
PROCESSING = "processing"

AUTH_ERRORS = schema.errors(403)
READ_ERRORS = schema.errors(400, 403)
ACCOUNT_ID = schema.object_id("account_id", "account")
NO_ACCOUNT = "no such account (or a malformed id)"


def id_from(value: str, what: str) -> uuid.UUID:
    """Return the id in a URL; a malformed one names nothing that exists, so it is a 404."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise AggregateNotFound(f"no {what} {value!r}") from None


def amount_text(value: Decimal, currency: str) -> str:
    """Return `value` as a decimal string with `currency`'s minor units: "12.50", "1000"."""
    places = MINOR_UNITS.get(currency)
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places))
    return format(value, "f")


@extend_schema_field(OpenApiTypes.STR)
class Amount(serializers.Field):
    """An amount of the object's currency, as a decimal string."""

    def __init__(self, attribute: str, **kwargs) -> None:
        self.attribute = attribute
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, instance) -> str:
        return amount_text(getattr(instance, self.attribute), instance.currency)


class AccountOut(serializers.Serializer):
    id = serializers.UUIDField(source="account_id")
    owner = serializers.CharField()
    currency = serializers.CharField()
    balance = Amount("balance")
    overdraft_limit = Amount("overdraft_limit")
    status = serializers.CharField()
    version = serializers.IntegerField()
    opened_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class StateOut(serializers.Serializer):
    id = serializers.UUIDField()
    version = serializers.IntegerField()
    owner = serializers.CharField()
    currency = serializers.CharField()
    balance = Amount("balance")
    overdraft_limit = Amount("overdraft_limit")
    closed = serializers.BooleanField()


class EventMetadataOut(serializers.Serializer):
    user_id = serializers.CharField(allow_null=True, help_text="who: the user's stable id")
    username = serializers.CharField(
        allow_null=True, default=None, help_text="who: the user's name when the event was appended"
    )
    reason = serializers.CharField(
        allow_null=True, default=None, help_text="why: the reason the command was given"
    )
    correlation_id = serializers.CharField(allow_null=True, help_text="the request or job")
    causation_id = serializers.CharField(allow_null=True, help_text="what caused it")
    trace_id = serializers.CharField(allow_null=True)
    imported = serializers.BooleanField(default=False, help_text="history imported later")
    recorded_at = serializers.CharField(allow_null=True, help_text="when an import stored it")


class ErasedOut(serializers.Serializer):
    at = serializers.DateTimeField(
        source="forgotten_at", allow_null=True, help_text="when (null: no record says)"
    )
    by = serializers.CharField(source="forgotten_by", help_text="who forgot them")
    reason = serializers.CharField(help_text="why")


class EventOut(serializers.Serializer):
    """An event of the log. Its personal fields are opened, or read as erased once their data
    subject was forgotten; the log keeps them sealed, and its hashes cover the seal."""

    position = serializers.SerializerMethodField(help_text='log position, "<transaction>-<id>"')
    aggregate_id = serializers.UUIDField()
    aggregate_type = serializers.CharField()
    version = serializers.IntegerField()
    event_type = serializers.CharField()
    schema_version = serializers.IntegerField()
    data = serializers.SerializerMethodField(
        help_text="as stored, never upcast, its personal fields opened (or the erased value, "
        '"[erased]"); sealed as stored when they cannot be opened (`personal_data_error`)'
    )
    erased = serializers.SerializerMethodField(
        help_text="when the event's personal data was erased, by whom and why (null: it was not)"
    )
    personal_data_error = serializers.SerializerMethodField(
        help_text="why the personal fields could not be opened (null: they were, or it has none)"
    )
    created_at = serializers.DateTimeField()
    metadata = EventMetadataOut()

    def get_position(self, event: Event) -> str:
        return str(event.position)

    @extend_schema_field(OpenApiTypes.ANY)
    def get_data(self, event: Event):
        disclosure = self._disclosure(event)
        return event.event_data if disclosure.data is None else disclosure.data

    @extend_schema_field(ErasedOut(allow_null=True))
    def get_erased(self, event: Event) -> dict | None:
        disclosure = self._disclosure(event)
        if disclosure.erasures:
            return ErasedOut(disclosure.erasures[0]).data
        if disclosure.erased:  # a destroyed key that no record explains
            return {"at": None, "by": "", "reason": ""}
        return None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_personal_data_error(self, event: Event) -> str | None:
        return self._disclosure(event).problem or None

    def _disclosure(self, event: Event) -> Disclosure:
        disclosed = self.context.setdefault("disclosed", {})
        if event.id not in disclosed:  # not given for a page (`events_out`): this one alone
            disclosed.update(disclose([event]))
        return disclosed[event.id]


def disclose(events: list[Event]) -> dict[int, Disclosure]:
    """Open the personal fields of `events`, with one look-up of their keys and erasures."""
    sealed = [(event.event_type, event.event_data) for event in events]
    personal = personal_keys(EventMapper(), sealed)
    return {event.id: personal.disclose(event.event_type, event.event_data) for event in events}


def events_out(events: list[Event]) -> list:
    """A page of events as the API shows them (`EventOut`)."""
    return EventOut(events, many=True, context={"disclosed": disclose(events)}).data


class ProjectionOut(serializers.Serializer):
    name = serializers.CharField()
    inline = serializers.BooleanField()
    status = serializers.CharField()
    position = serializers.CharField(help_text="the log position its read model reflects")
    head = serializers.CharField(help_text="the last log position a reader can see")
    events_behind = serializers.IntegerField()
    behind_capped = serializers.BooleanField(help_text="more events behind than counted")
    last_error = serializers.CharField()
    failed_event_id = serializers.IntegerField(allow_null=True)


class TransferStatusOut(serializers.Serializer):
    id = serializers.UUIDField(source="transfer_id")
    source_id = serializers.UUIDField()
    destination_id = serializers.UUIDField()
    amount = Amount("amount")
    currency = serializers.CharField()
    status = serializers.CharField(
        help_text="requested, debited, completed, failed; processing: recorded, not yet in "
        "the read model"
    )
    failure_code = serializers.CharField()
    failure_reason = serializers.CharField()
    refunded = serializers.BooleanField()
    requested_at = serializers.DateTimeField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)
    read_model = serializers.SerializerMethodField()

    @extend_schema_field(ProjectionOut)
    def get_read_model(self, row) -> dict:
        return ProjectionOut(self.context["read_model"]).data


class AccountList(generics.ListAPIView):
    queryset = AccountBalance.objects.all()
    serializer_class = AccountOut
    filterset_class = AccountFilter
    pagination_class = AccountPagination

    @extend_schema(
        responses={
            200: AccountOut(many=True),
            **schema.errors(400, 403, described={404: "no such page"}),
        },
        parameters=[ordering_parameter()],
        summary="List accounts (read model, updated with each command)",
    )
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)


class AccountDetail(APIView):
    @extend_schema(
        responses={200: AccountOut, **schema.errors(403, described={404: NO_ACCOUNT})},
        parameters=[
            ACCOUNT_ID,
            OpenApiParameter(
                "ETag",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description='"<version>": send it as If-Match to make a command conditional',
                response=[200],
            ),
        ],
        summary="One account",
    )
    def get(self, request, account_id: str):
        account = AccountBalance.objects.filter(account_id=id_from(account_id, "account")).first()
        if account is None:
            raise AggregateNotFound(f"no account {account_id!r}")
        response = Response(AccountOut(account).data)
        response["ETag"] = f'"{account.version}"'
        return response


class AccountEvents(generics.GenericAPIView):
    serializer_class = EventOut
    pagination_class = StreamPagination
    filter_backends = ()

    @extend_schema(
        responses={
            200: EventOut(many=True),
            **schema.errors(400, 403, described={404: NO_ACCOUNT}),
        },
        parameters=[ACCOUNT_ID],
        summary="An account's events in version order",
    )
    def get(self, request, account_id: str):
        events = Event.objects.filter(
            aggregate_id=id_from(account_id, "account"), aggregate_type=BankAccount.type_name
        )
        page = self.paginate_queryset(events)
        if not page and not events.exists():
            raise AggregateNotFound(f"no account {account_id!r}")
        return self.get_paginated_response(events_out(page))


class AccountState(APIView):
    @extend_schema(
        parameters=[ACCOUNT_ID, StateQuery],
        responses={
            200: StateOut,
            **schema.errors(
                400, 403, described={404: "no such account, or none yet at that version or time"}
            ),
            409: INTEGRITY_BROKEN,
        },
        summary="An account as it was after `version` events or at `as_of`",
        description="Rebuilt from the events, as a full replay would. `as_of` needs a UTC offset "
        "(a time without one is a 400, never guessed) and selects the last event stamped at or "
        "before it. 404 when the account did not exist yet or has fewer events. 409 "
        "integrity_broken, and no state, when the account's stream fails its integrity check "
        "(its hash chain, and the hashes the ledger sealed for it), whatever the version asked.",
    )
    def get(self, request, account_id: str):
        query = StateQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        account_uuid = id_from(account_id, "account")
        # The whole stream, not just up to `version`: a stream altered anywhere is evidence of
        # tampering, and no state rebuilt from it is presented as the account's.
        account = verified_replay(BankAccount, account_uuid, **query.validated_data)
        return Response(StateOut(account).data)


class TransferDetail(APIView):
    @extend_schema(
        responses={
            200: TransferStatusOut,
            **schema.errors(403, described={404: "no such transfer (or a malformed id)"}),
            409: INTEGRITY_BROKEN,
        },
        parameters=[
            schema.object_id("transfer_id", "transfer"),
            OpenApiParameter(
                "X-Read-Model-Position",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="the log position the answer reflects",
                response=[200],
            ),
        ],
        summary="Where a transfer stands (asynchronous read model)",
        description="A transfer recorded but not yet in the read model answers 200 with status "
        '"processing". `read_model` and the `X-Read-Model-Position` header say which log '
        "position the answer reflects and how many events the read model is behind. 409 "
        "integrity_broken when a transfer not yet in the read model would be rebuilt from a "
        "stream that fails its integrity check.",
    )
    def get(self, request, transfer_id: str):
        transfer_uuid = id_from(transfer_id, "transfer")
        # The checkpoint is read before the row: the position reported is never newer than
        # what the row reflects.
        read_model = projection_status(TRANSFERS_PROJECTION, get_event_store())
        row = TransferStatus.objects.filter(transfer_id=transfer_uuid).first()
        if row is None:
            row = recorded_transfer(transfer_uuid)
        response = Response(TransferStatusOut(row, context={"read_model": read_model}).data)
        response["X-Read-Model-Position"] = str(read_model.position)
        return response


def recorded_transfer(transfer_id: uuid.UUID) -> TransferStatus:
    """Return an unsaved row for a transfer the store holds and the read model does not yet.

    The one replay of this endpoint, so the only place its stream is checked.
    """
    transfer = verified_replay(Transfer, transfer_id)
    return TransferStatus(
        transfer_id=transfer.id,
        source_id=transfer.source_id,
        destination_id=transfer.destination_id,
        amount=transfer.amount,
        currency=transfer.currency,
        status=PROCESSING,
    )


class EventList(generics.ListAPIView):
    serializer_class = EventOut
    filterset_class = EventFilter
    pagination_class = LogPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema needs the model, not the log
            return Event.objects.none()
        # Bounded by the head a log reader may see: on PostgreSQL no event can commit later
        # at a position below it, so a cursor never misses one.
        return Event.objects.filter(up_to_position(get_event_store().head()))

    @extend_schema(
        responses={200: EventOut(many=True), **READ_ERRORS},
        summary="The global event log in position order",
    )
    def get(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(events_out(page))


class ProjectionList(APIView):
    @extend_schema(
        responses={200: ProjectionOut(many=True), **AUTH_ERRORS},
        summary="Every projection's position, lag and status",
    )
    def get(self, request):
        return Response(ProjectionOut(projection_statuses(get_event_store()), many=True).data)
