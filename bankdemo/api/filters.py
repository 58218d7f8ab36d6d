"""Query parameters of the read API: account and log filters, and the time-travel query."""

from __future__ import annotations

import re

import django_filters
from django import forms
from django.utils import timezone
from django_filters.fields import BaseCSVField
from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import serializers

from bankdemo.api import schema
from bankdemo.domain import MINOR_UNITS
from bankdemo.models import AccountBalance
from eventsourcing_app.models import Event

MAX_VERSION = 2**31 - 1
# A query string decodes "+" to a space, so "…T10:00:00+01:00" sent unencoded arrives as
# "…T10:00:00 01:00"; the space can only have been a plus sign there.
OFFSET_SENT_UNENCODED = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")
# A balance bound: what AccountBalance.balance holds (20 digits, 3 decimals), written plainly.
BALANCE = r"^-?[0-9]{1,17}(\.[0-9]{1,3})?$"
SEARCH_TEXT = r"^[^\x00]+$"
BLANK = "Give a value, or leave the parameter out."


class NoBlankParameters(forms.Form):
    """Refuse a parameter given without a value (`?currency=`, `?ordering=owner,`).

    django-filter would take a blank as "no filter", and a blank ordering item as a field name.
    """

    def clean(self):
        for name, field in self.fields.items():
            text = self.data.get(name)
            items = text.split(",") if isinstance(field, BaseCSVField) and text else [text]
            if "" in items:
                self.add_error(name, BLANK)
        return super().clean()


class PlainDecimalField(forms.DecimalField):
    """A decimal as the schema's pattern writes it: no exponent, no plus sign, no spaces."""

    def to_python(self, value):
        if value not in self.empty_values and not re.fullmatch(BALANCE, str(value)):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class BalanceFilter(django_filters.NumberFilter):
    field_class = PlainDecimalField


def documented(filter_: django_filters.Filter, schema: dict) -> django_filters.Filter:
    """Give `filter_` its OpenAPI schema: django-filter's own says the type and nothing more."""
    if "help_text" in filter_.extra:
        schema = {**schema, "description": filter_.extra["help_text"]}
    return extend_schema_field(schema)(filter_)


def text_filter(max_length: int, **kwargs) -> django_filters.Filter:
    """A text parameter of at most `max_length` characters, taken as sent (not stripped)."""
    text = {"type": "string", "maxLength": max_length, "pattern": SEARCH_TEXT}
    return documented(django_filters.CharFilter(max_length=max_length, strip=False, **kwargs), text)


def balance_filter(lookup_expr: str, help_text: str) -> django_filters.Filter:
    """A bound on the balance, written plainly (no exponent, plus sign or spaces)."""
    bound = BalanceFilter(
        field_name="balance",
        lookup_expr=lookup_expr,
        max_digits=20,
        decimal_places=3,
        help_text=help_text,
    )
    return documented(bound, {"type": "string", "pattern": BALANCE})


class AccountOrdering(django_filters.OrderingFilter):
    """`?ordering=owner,-balance` over whitelisted fields; the id breaks ties so pages never
    overlap or skip a row."""

    def filter(self, qs, value):
        fields = [self.get_ordering_value(param) for param in value or ()]
        return qs.order_by(*(fields or ["opened_at"]), "account_id")


class AccountFilter(django_filters.FilterSet):
    """Filters of `GET /api/accounts/`."""

    owner = text_filter(
        200, lookup_expr="icontains", help_text="part of the owner's name, any case"
    )
    status = django_filters.ChoiceFilter(choices=[("open", "open"), ("closed", "closed")])
    currency = django_filters.ChoiceFilter(choices=[(code, code) for code in sorted(MINOR_UNITS)])
    balance_min = balance_filter("gte", "accounts with at least this balance")
    balance_max = balance_filter("lte", "accounts with at most this balance")
    ordering = AccountOrdering(
        fields=(
            ("owner", "owner"),
            ("balance", "balance"),
            ("currency", "currency"),
            ("status", "status"),
            ("version", "version"),
            ("opened_at", "opened_at"),
            ("updated_at", "updated_at"),
        ),
        help_text="comma-separated fields, `-` for descending (default: opened_at)",
    )

    class Meta:
        model = AccountBalance
        fields = ()
        form = NoBlankParameters


def ordering_parameter() -> OpenApiParameter:
    """`?ordering=` as AccountFilter takes it: one field or more (drf-spectacular allows none)."""
    ordering = AccountFilter.base_filters["ordering"]
    fields = {"type": "string", "enum": sorted(value for value, _ in ordering.extra["choices"])}
    return OpenApiParameter(
        "ordering",
        {"type": "array", "minItems": 1, "items": fields},
        OpenApiParameter.QUERY,
        description=ordering.extra["help_text"],
        style="form",
        explode=False,
    )


class EventFilter(django_filters.FilterSet):
    """Filters of `GET /api/events/`; each one is served by an index."""

    aggregate_id = django_filters.UUIDFilter()
    aggregate_type = text_filter(100)
    event_type = text_filter(100)
    correlation_id = text_filter(
        200,
        method="filter_correlation",
        help_text="the events of one request, job or transfer saga",
    )

    class Meta:
        model = Event
        fields = ()
        form = NoBlankParameters

    def filter_correlation(self, queryset, name, value):
        return queryset.for_correlation(value)


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO-8601 time with a UTC offset: a time without one is refused, never guessed."""

    default_error_messages = {
        "naive": "Give a UTC offset, such as 2026-11-26T10:00:00Z or 2026-11-26T11:00:00+01:00.",
    }

    def to_internal_value(self, value):
        if isinstance(value, str):
            value = OFFSET_SENT_UNENCODED.sub(r"\1+\2", value.strip())
        return super().to_internal_value(value)

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)


class WholeNumberField(serializers.IntegerField):
    """An integer in ASCII digits; DRF's own takes "5.0" and " 5" too, the schema does not."""

    def to_internal_value(self, data):
        if isinstance(data, str) and schema.whole_number(data) is None:
            self.fail("invalid")
        return super().to_internal_value(data)


class StateQuery(serializers.Serializer):
    """`?version=N` or `?as_of=<ISO-8601>` (neither: the state now)."""

    version = WholeNumberField(min_value=1, max_value=MAX_VERSION, required=False)
    as_of = AwareDateTimeField(required=False)

    def validate(self, attrs):
        blank = [name for name in self.fields if self.initial_data.get(name) == ""]
        if blank:  # DRF skips a blank query parameter that is not required
            raise serializers.ValidationError({name: [BLANK] for name in blank})
        if "version" in attrs and "as_of" in attrs:
            both = "give version or as_of, not both"
            raise serializers.ValidationError({"version": [both], "as_of": [both]})
        return attrs
