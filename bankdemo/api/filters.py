"""Query parameters of the read API: account and log filters, and the time-travel query."""

from __future__ import annotations

import re

import django_filters
from django.utils import timezone
from rest_framework import serializers

from bankdemo.domain import MINOR_UNITS
from bankdemo.models import AccountBalance
from eventsourcing_app.models import Event

MAX_VERSION = 2**31 - 1
# A query string decodes "+" to a space, so "…T10:00:00+01:00" sent unencoded arrives as
# "…T10:00:00 01:00"; the space can only have been a plus sign there.
OFFSET_SENT_UNENCODED = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


class AccountOrdering(django_filters.OrderingFilter):
    """`?ordering=owner,-balance` over whitelisted fields; the id breaks ties so pages never
    overlap or skip a row."""

    def filter(self, qs, value):
        fields = [self.get_ordering_value(param) for param in value or ()]
        return qs.order_by(*(fields or ["opened_at"]), "account_id")


class AccountFilter(django_filters.FilterSet):
    """Filters of `GET /api/accounts/`."""

    owner = django_filters.CharFilter(
        lookup_expr="icontains", max_length=200, help_text="part of the owner's name, any case"
    )
    status = django_filters.ChoiceFilter(choices=[("open", "open"), ("closed", "closed")])
    currency = django_filters.ChoiceFilter(choices=[(code, code) for code in sorted(MINOR_UNITS)])
    balance_min = django_filters.NumberFilter(
        field_name="balance",
        lookup_expr="gte",
        max_digits=20,
        decimal_places=3,
        help_text="accounts with at least this balance",
    )
    balance_max = django_filters.NumberFilter(
        field_name="balance",
        lookup_expr="lte",
        max_digits=20,
        decimal_places=3,
        help_text="accounts with at most this balance",
    )
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


class EventFilter(django_filters.FilterSet):
    """Filters of `GET /api/events/`; each one is served by an index."""

    aggregate_id = django_filters.UUIDFilter()
    aggregate_type = django_filters.CharFilter(max_length=100)
    event_type = django_filters.CharFilter(max_length=100)
    correlation_id = django_filters.CharFilter(
        method="filter_correlation",
        max_length=200,
        help_text="the events of one request, job or transfer saga",
    )

    class Meta:
        model = Event
        fields = ()

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


class StateQuery(serializers.Serializer):
    """`?version=N` or `?as_of=<ISO-8601>` (neither: the state now)."""

    version = serializers.IntegerField(min_value=1, max_value=MAX_VERSION, required=False)
    as_of = AwareDateTimeField(required=False)

    def validate(self, attrs):
        if "version" in attrs and "as_of" in attrs:
            both = "give version or as_of, not both"
            raise serializers.ValidationError({"version": [both], "as_of": [both]})
        return attrs
