"""The bank's read models in the admin: read-only, each row linking to its timeline.

A read model's History button leads to the event timeline of the aggregate behind the row (an
account's, a transfer's): the events are its history, not the admin's change log (there is
none: nobody changes these rows in the admin). Its page links to the events behind it and
reads like the lists: amounts in their currency's minor units, dates in UTC (`utc`).
"""

import uuid

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from bankdemo.domain import MINOR_UNITS, Transfer
from bankdemo.models import AccountBalance, DailyTotal, LedgerEntry, TransferStatus
from eventsourcing_app.audit.admin import CappedCountPaginator, ReadOnlyAdmin, audit_links
from eventsourcing_app.audit.charts import register_series
from eventsourcing_app.audit.display import amount_cell, amount_text, utc
from eventsourcing_app.models import Event


def places(currency) -> int | None:
    """The currency's decimal places (ISO 4217 minor units), None for one the bank does not
    know (its amount is then shown as stored)."""
    return MINOR_UNITS.get(currency)


def money(amount, currency):
    """An amount of a list, right-aligned, in its currency's minor units: `25,145.23` EUR,
    `1,200` JPY, `0.500` KWD."""
    return amount_cell(amount, places(currency))


# An account's timeline plots its balance after each event, in the account's currency.
register_series("bank.Account", "balance", lambda state: state["balance"],
                lambda value, state: f"{amount_text(value, places(state.get('currency')))} "
                                     f"{state.get('currency', '')}".strip())  # fmt: skip

AUDIT_CSS = {"all": ["eventsourcing_app/audit.css"]}  # amounts right-aligned

CHANGE_FORM = "admin/bankdemo/read_model_page.html"


def timeline_url(aggregate_id, version=None) -> str:
    url = reverse("admin:eventsourcing_timeline", args=[aggregate_id])
    return f"{url}#v{version}" if version else url


def timeline_link(aggregate_id, label) -> str:
    return format_html('<a href="{}">{}</a>', timeline_url(aggregate_id), label)


def correlation_url(correlation_id) -> str | None:
    if not correlation_id or not isinstance(correlation_id, str):
        return None
    return reverse("admin:eventsourcing_correlation", args=[correlation_id])


class TimelineHistory:
    """The History button of a read model: the timeline of the aggregate behind the row.

    Its page shows `fields`, all of them `readonly_fields`; an amount or a date among them is a
    method that formats it, never the model's field (Django would show `1200.000`, its own dates).
    """

    change_form_template = CHANGE_FORM
    fields = readonly_fields = ("audit",)

    def heading(self, obj) -> str:
        """The row's name in the page's title and breadcrumbs."""
        return str(obj)

    def history_url(self, obj) -> str | None:
        raise NotImplementedError

    def trail_url(self, obj) -> str | None:
        """The correlation trail of the request or job that made the row's aggregate."""
        return None

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_view_permission(request, obj):
            return super().history_view(request, object_id, extra_context)
        return HttpResponseRedirect(self.history_url(obj))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(history_url=self.history_url(obj), trail_url=self.trail_url(obj),
                           subtitle=self.heading(obj))  # fmt: skip
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="audit trails")
    def audit(self, obj):
        return format_html('<a href="{}" class="es-timeline-link">timeline</a>',
                           self.history_url(obj))  # fmt: skip


@admin.register(AccountBalance)
class AccountBalanceAdmin(TimelineHistory, ReadOnlyAdmin):
    list_display = ("owner", "currency", "balance_text", "status", "version", "timeline")
    list_filter = ("status", "currency")
    search_fields = ("owner",)
    fields = ("account_id", "owner", "currency", "balance_text", "overdraft_limit_text", "status",
              "version", "opened", "updated", "audit")  # fmt: skip
    readonly_fields = fields
    show_full_result_count = False
    paginator = CappedCountPaginator

    class Media:
        css = AUDIT_CSS

    @admin.display(description="balance", ordering="balance")
    def balance_text(self, row):
        return money(row.balance, row.currency)

    @admin.display(description="overdraft limit")
    def overdraft_limit_text(self, row):
        return money(row.overdraft_limit, row.currency)

    @admin.display(description="opened at (UTC)")
    def opened(self, row):
        return utc(row.opened_at)

    @admin.display(description="updated at (UTC)")
    def updated(self, row):
        return utc(row.updated_at)

    @admin.display(description="history")
    def timeline(self, row):
        return timeline_link(row.account_id, "timeline")

    def history_url(self, row) -> str:
        return timeline_url(row.account_id)

    def heading(self, row) -> str:
        return f"{row.owner} {amount_text(row.balance, places(row.currency))} {row.currency}"


@admin.register(LedgerEntry)
class LedgerEntryAdmin(TimelineHistory, ReadOnlyAdmin):
    list_display = ("created", "account", "kind", "amount_text", "balance_after_text",
                    "currency", "transfer")  # fmt: skip
    list_filter = ("kind", "currency")
    show_full_result_count = False
    paginator = CappedCountPaginator
    ordering = ("-id",)
    fields = ("account_id", "version", "event_id", "kind", "amount_text", "balance_after_text",
              "currency", "transfer_id", "created", "audit")  # fmt: skip
    readonly_fields = fields

    class Media:
        css = AUDIT_CSS

    @admin.display(description="created at (UTC)", ordering="created_at")
    def created(self, row):
        return utc(row.created_at)

    @admin.display(description="amount", ordering="amount")
    def amount_text(self, row):
        return money(row.amount, row.currency)

    @admin.display(description="balance after", ordering="balance_after")
    def balance_after_text(self, row):
        return money(row.balance_after, row.currency)

    @admin.display(description="account")
    def account(self, row):
        return timeline_link(row.account_id, str(row.account_id)[:8])

    @admin.display(description="transfer")
    def transfer(self, row):
        return timeline_link(row.transfer_id, str(row.transfer_id)[:8]) if row.transfer_id else "-"

    def history_url(self, row) -> str:
        return timeline_url(row.account_id, row.version)

    def heading(self, row) -> str:
        amount = amount_text(row.amount, places(row.currency))
        return f"{row.kind} {amount} {row.currency} on {row.account_id} v{row.version}"

    def trail_url(self, row) -> str | None:
        event = Event.objects.filter(pk=row.event_id).first()
        return correlation_url(event.metadata.get("correlation_id")) if event else None

    @admin.display(description="audit trails")
    def audit(self, row):
        """The entry's event (its page, timeline, correlation and cause) and its transfer."""
        event = Event.objects.filter(pk=row.event_id).first()
        parts = [format_html('<a href="{}" class="es-event-link">event {}</a>',
                             reverse("admin:eventsourcing_app_event_change", args=[row.event_id]),
                             row.event_id)]  # fmt: skip
        if event is not None and isinstance(event.metadata, dict):
            parts.append(audit_links(event))
        else:
            parts.append(format_html('<a href="{}" class="es-timeline-link">timeline</a>',
                                     self.history_url(row)))  # fmt: skip
        if row.transfer_id:
            parts.append(format_html('<a href="{}" class="es-transfer-link">transfer {}</a>',
                                     timeline_url(row.transfer_id), row.transfer_id))  # fmt: skip
        return format_html_join(" · ", "{}", ((part,) for part in parts))


@admin.register(DailyTotal)
class DailyTotalAdmin(ReadOnlyAdmin):
    list_display = ("day_text", "currency", "deposits_text", "deposit_count", "withdrawals_text",
                    "withdrawal_count")  # fmt: skip
    list_filter = ("currency",)
    ordering = ("-day",)
    fields = ("key", "day_text", "currency", "deposits_text", "deposit_count", "withdrawals_text",
              "withdrawal_count")  # fmt: skip
    readonly_fields = fields

    class Media:
        css = AUDIT_CSS

    @admin.display(description="day (UTC)", ordering="day")
    def day_text(self, row):
        return utc(row.day)

    @admin.display(description="deposits", ordering="deposits")
    def deposits_text(self, row):
        return money(row.deposits, row.currency)

    @admin.display(description="withdrawals", ordering="withdrawals")
    def withdrawals_text(self, row):
        return money(row.withdrawals, row.currency)

    def history_view(self, request, object_id, extra_context=None):
        """A day's totals come from that day's events: the event list of that date."""
        row = self.get_object(request, unquote(object_id))
        if row is None or not self.has_view_permission(request, row):
            return super().history_view(request, object_id, extra_context)
        day = row.day.isoformat()
        url = reverse("admin:eventsourcing_app_event_changelist")
        return HttpResponseRedirect(f"{url}?created_from={day}&created_to={day}")


@admin.register(TransferStatus)
class TransferStatusAdmin(TimelineHistory, ReadOnlyAdmin):
    list_display = ("requested", "transfer", "amount_text", "currency", "status", "failure_code")
    list_filter = ("status",)
    ordering = ("-requested_at",)
    fields = ("transfer_id", "source_id", "destination_id", "amount_text", "currency", "status",
              "failure_code", "failure_reason", "refunded", "version", "requested", "updated",
              "audit")  # fmt: skip
    readonly_fields = fields

    class Media:
        css = AUDIT_CSS

    @admin.display(description="requested at (UTC)", ordering="requested_at")
    def requested(self, row):
        return utc(row.requested_at)

    @admin.display(description="updated at (UTC)")
    def updated(self, row):
        return utc(row.updated_at)

    @admin.display(description="amount", ordering="amount")
    def amount_text(self, row):
        return money(row.amount, row.currency)

    @admin.display(description="transfer")
    def transfer(self, row):
        return timeline_link(row.transfer_id, str(row.transfer_id)[:8])

    def history_url(self, row) -> str:
        return timeline_url(row.transfer_id)

    def first_event(self, row) -> Event | None:
        return (
            Event.objects.filter(aggregate_id=row.transfer_id, aggregate_type=Transfer.type_name)
            .order_by("version")
            .first()
        )

    def trail_url(self, row) -> str | None:
        event = self.first_event(row)
        if event is None or not isinstance(event.metadata, dict):
            return None
        return correlation_url(event.metadata.get("correlation_id"))

    @admin.display(description="audit trails")
    def audit(self, row):
        """The transfer's timeline, correlation trail and cause, and both accounts'."""
        event = self.first_event(row)
        if event is not None and isinstance(event.metadata, dict):
            parts = [audit_links(event)]
        else:
            parts = [format_html('<a href="{}" class="es-timeline-link">timeline</a>',
                                 self.history_url(row))]  # fmt: skip
        for label, account_id in (("from", row.source_id), ("to", row.destination_id)):
            if isinstance(account_id, uuid.UUID):
                parts.append(format_html('<a href="{}" class="es-account-link">{} account {}</a>',
                                         timeline_url(account_id), label, account_id))  # fmt: skip
        return format_html_join(" · ", "{}", ((part,) for part in parts))
