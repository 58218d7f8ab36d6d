"""Pagination of the read API: numbered pages of accounts, keyset cursors over event streams.

Events are paged by keyset: a page is the rows after the last one the client saw, in index
order, so a page costs the same on the millionth row as on the first, needs no COUNT, and rows
appended meanwhile never shift a page.
"""

from __future__ import annotations

import re

from django.db.models import Q, QuerySet
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from bankdemo.api.schema import whole_number
from eventsourcing_app.core.records import Position

MAX_INT = 2**31 - 1
# 18 digits each stay below 2**63 (a bigint), so every position the pattern admits is readable.
LOG_POSITION = r"^[0-9]{1,18}-[0-9]{1,18}$"


class AccountPagination(PageNumberPagination):
    """`?page=N&page_size=M`; a page beyond the last is a 404, a malformed size a 400."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request) -> int:
        text = request.query_params.get(self.page_size_query_param)
        if text is None:
            return self.page_size
        size = whole_number(text) or 0
        if not 1 <= size <= MAX_INT:
            raise ValidationError({self.page_size_query_param: ["a positive integer is required"]})
        return min(size, self.max_page_size)

    def get_page_number(self, request, paginator) -> int:
        text = request.query_params.get(self.page_query_param)
        if text is None:
            return 1
        number = whole_number(text)
        if not number:  # DRF's own takes "", "+2" and "last" too, which the schema does not
            raise NotFound("Invalid page.")
        return number

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"].update(minimum=1, maximum=MAX_INT)
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = (
                    f"accounts per page (default {self.page_size}, at most {self.max_page_size})"
                )
        return parameters


def after_position(position: Position) -> Q:
    """Rows after `position` in log order, written so the (transaction_id, id) index bounds it."""
    return Q(transaction_id__gte=position.transaction) & (
        Q(transaction_id__gt=position.transaction) | Q(id__gt=position.id)
    )


def up_to_position(position: Position) -> Q:
    """Rows at or before `position` in log order."""
    return Q(transaction_id__lte=position.transaction) & (
        Q(transaction_id__lt=position.transaction) | Q(id__lte=position.id)
    )


class KeysetPagination(BasePagination):
    """`?<cursor>=<last seen>&limit=N`; the answer's `next` link carries the next cursor.

    `next` is null when nothing follows yet; a client tailing the stream asks again later
    with the cursor of the last item it got.
    """

    cursor_param = ""
    cursor_description = ""
    cursor_schema: dict = {"type": "string"}
    order_by: tuple[str, ...] = ()
    limit_param = "limit"
    default_limit = 100
    max_limit = 1000

    def parse_cursor(self, text: str):
        """Return the cursor written as `text`, or raise ValueError saying what is expected."""
        raise NotImplementedError

    def filter_after(self, queryset: QuerySet, cursor) -> QuerySet:
        raise NotImplementedError

    def cursor_of(self, item) -> str:
        raise NotImplementedError

    def paginate_queryset(self, queryset, request, view=None) -> list:
        self.request = request
        limit = self.get_limit(request)
        text = request.query_params.get(self.cursor_param)
        if text is not None:
            try:
                cursor = self.parse_cursor(text)
            except ValueError as exc:
                raise ValidationError({self.cursor_param: [str(exc)]}) from None
            queryset = self.filter_after(queryset, cursor)
        # One row more than asked for says whether a next page exists, without counting.
        rows = list(queryset.order_by(*self.order_by)[: limit + 1])
        self.has_next = len(rows) > limit
        self.page = rows[:limit]
        return self.page

    def get_limit(self, request) -> int:
        text = request.query_params.get(self.limit_param)
        if text is None:
            return self.default_limit
        limit = whole_number(text) or 0
        if not 1 <= limit <= MAX_INT:
            raise ValidationError({self.limit_param: ["a positive integer is required"]})
        return min(limit, self.max_limit)

    def get_next_link(self) -> str | None:
        if not self.has_next:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_param, self.cursor_of(self.page[-1]))

    def get_paginated_response(self, data) -> Response:
        return Response({"next": self.get_next_link(), "results": data})

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["next", "results"],
            "properties": {
                "next": {
                    "type": "string",
                    "format": "uri",
                    "nullable": True,
                    "description": "the next page; null when nothing follows yet",
                },
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": self.cursor_param,
                "required": False,
                "in": "query",
                "description": self.cursor_description,
                "schema": self.cursor_schema,
            },
            {
                "name": self.limit_param,
                "required": False,
                "in": "query",
                "description": f"events per page (default {self.default_limit}, "
                f"at most {self.max_limit})",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
            },
        ]


class LogPagination(KeysetPagination):
    """The global log in position order: `?after=<transaction>-<id>`."""

    cursor_param = "after"
    cursor_description = 'the position of the last event seen, such as "0-42"'
    cursor_schema = {"type": "string", "pattern": LOG_POSITION}
    order_by = ("transaction_id", "id")

    def parse_cursor(self, text: str) -> Position:
        if not re.fullmatch(LOG_POSITION, text):
            raise ValueError(f"{text!r} is not a log position like '0-42'")
        return Position.parse(text)

    def filter_after(self, queryset: QuerySet, cursor: Position) -> QuerySet:
        return queryset.filter(after_position(cursor))

    def cursor_of(self, item) -> str:
        return str(item.position)


class StreamPagination(KeysetPagination):
    """One aggregate's events in version order: `?after_version=N`."""

    cursor_param = "after_version"
    cursor_description = "the version of the last event seen (0: from the start)"
    cursor_schema = {"type": "integer", "minimum": 0, "maximum": MAX_INT}
    order_by = ("version",)

    def parse_cursor(self, text: str) -> int:
        version = whole_number(text)
        if version is None or version > MAX_INT:
            raise ValueError("a version (an integer from 0) is required")
        return version

    def filter_after(self, queryset: QuerySet, cursor: int) -> QuerySet:
        return queryset.filter(version__gt=cursor)

    def cursor_of(self, item) -> str:
        return str(item.version)
