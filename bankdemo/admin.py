"""The bank's read models in the admin: read-only, each row linking to its timeline."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from bankdemo.models import AccountBalance, DailyTotal, LedgerEntry, TransferStatus
from eventsourcing_app.audit.admin import CappedCountPaginator, ReadOnlyAdmin
from eventsourcing_app.audit.charts import register_series

# An account's timeline plots its balance after each event.
register_series("bank.Account", "balance", lambda state: state["balance"])


def timeline_link(aggregate_id, label) -> str:
    url = reverse("admin:eventsourcing_timeline", args=[aggregate_id])
    return format_html('<a href="{}">{}</a>', url, label)


@admin.register(AccountBalance)
class AccountBalanceAdmin(ReadOnlyAdmin):
    list_display = ("owner", "currency", "balance", "status", "version", "timeline")
    list_filter = ("status", "currency")
    search_fields = ("owner",)
    show_full_result_count = False
    paginator = CappedCountPaginator

    @admin.display(description="history")
    def timeline(self, row):
        return timeline_link(row.account_id, "timeline")


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "account", "kind", "amount", "balance_after", "currency")
    list_filter = ("kind", "currency")
    show_full_result_count = False
    paginator = CappedCountPaginator
    ordering = ("-id",)

    @admin.display(description="account")
    def account(self, row):
        return timeline_link(row.account_id, str(row.account_id)[:8])


@admin.register(DailyTotal)
class DailyTotalAdmin(ReadOnlyAdmin):
    list_display = ("day", "currency", "deposits", "deposit_count", "withdrawals",
                    "withdrawal_count")  # fmt: skip
    list_filter = ("currency",)
    ordering = ("-day",)


@admin.register(TransferStatus)
class TransferStatusAdmin(ReadOnlyAdmin):
    list_display = ("requested_at", "transfer", "amount", "currency", "status", "failure_code")
    list_filter = ("status",)
    ordering = ("-requested_at",)

    @admin.display(description="transfer")
    def transfer(self, row):
        return timeline_link(row.transfer_id, str(row.transfer_id)[:8])
