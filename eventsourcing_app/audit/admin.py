"""The audit UI's ModelAdmin options: a read-only event browser (its audit pages are in
`views.py`), snapshots, projection status with a rebuild action, and the checkpoint changes."""

from __future__ import annotations

import datetime as dt
import uuid

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from eventsourcing_app.audit.views import AuditViews
from eventsourcing_app.domain.aggregate import aggregate_types
from eventsourcing_app.domain.events import registry as event_registry
from eventsourcing_app.models import CheckpointChange, Event, ProjectionCheckpoint, Snapshot
from eventsourcing_app.projections import registry as projection_registry
from eventsourcing_app.projections.rebuild import rebuild
from eventsourcing_app.projections.status import checkpoint_changes, projection_statuses
from eventsourcing_app.wiring import get_event_store

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Count at most COUNT_CAP rows: paging stays fast on millions of events."""

    @cached_property
    def count(self) -> int:
        return self.object_list[: COUNT_CAP + 1].count()


class ReadOnlyAdmin(admin.ModelAdmin):
    """Nobody adds, changes or deletes here, superusers included."""

    actions = None

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class NamesFilter(admin.SimpleListFilter):
    """A filter whose choices are the registered names, not a DISTINCT over the table."""

    names: callable

    def lookups(self, request, model_admin):
        return [(name, name) for name in sorted(type(self).names())]

    def queryset(self, request, queryset):
        return queryset.filter(**{self.parameter_name: self.value()}) if self.value() else queryset


class AggregateTypeFilter(NamesFilter):
    title = "aggregate type"
    parameter_name = "aggregate_type"
    names = staticmethod(lambda: aggregate_types)


class EventTypeFilter(NamesFilter):
    title = "event type"
    parameter_name = "event_type"
    names = staticmethod(lambda: list(event_registry))


class RecentFilter(admin.SimpleListFilter):
    title = "date"
    parameter_name = "since"
    periods = {"1d": 1, "7d": 7, "30d": 30, "365d": 365}

    def lookups(self, request, model_admin):
        return [("1d", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days"),
                ("365d", "Last year")]  # fmt: skip

    def queryset(self, request, queryset):
        days = self.periods.get(self.value())
        if not days:
            return queryset
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
        return queryset.filter(created_at__gte=since)


def _metadata(event: Event) -> dict:
    """An event's metadata, or nothing when a row altered behind the triggers holds no object."""
    return event.metadata if isinstance(event.metadata, dict) else {}


@admin.register(Event)
class EventAdmin(AuditViews, ReadOnlyAdmin):
    list_display = ("position", "when", "aggregate", "event_type", "version", "user",
                    "correlation")  # fmt: skip
    list_filter = (AggregateTypeFilter, EventTypeFilter, RecentFilter)
    search_fields = ("aggregate_id",)  # searched exactly, see get_search_results
    search_help_text = "an aggregate id or a correlation id (exact)"
    ordering = ("-transaction_id", "-id")
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 100
    change_form_template = "admin/eventsourcing/event_change.html"  # with the ledger entry

    @admin.display(description="position", ordering="id")
    def position(self, event: Event):
        return str(event.position)

    @admin.display(description="when (UTC)", ordering="created_at")
    def when(self, event: Event):
        return event.created_at.strftime("%Y-%m-%d %H:%M:%S")

    @admin.display(description="aggregate")
    def aggregate(self, event: Event):
        url = reverse("admin:eventsourcing_timeline", args=[event.aggregate_id])
        return format_html('<a href="{}">{} {}</a>', url, event.aggregate_type,
                           str(event.aggregate_id)[:8])  # fmt: skip

    @admin.display(description="user")
    def user(self, event: Event):
        return _metadata(event).get("user_id") or "-"

    @admin.display(description="correlation")
    def correlation(self, event: Event):
        correlation_id = _metadata(event).get("correlation_id")
        if not correlation_id or not isinstance(correlation_id, str):
            return "-"
        url = reverse("admin:eventsourcing_correlation", args=[correlation_id])
        return format_html('<a href="{}">{}</a>', url, correlation_id[:18])

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(aggregate_id=uuid.UUID(term)), False
        except ValueError:
            return queryset.for_correlation(term), False

    def get_urls(self):
        return self.audit_urls() + super().get_urls()


@admin.register(Snapshot)
class SnapshotAdmin(ReadOnlyAdmin):
    list_display = ("aggregate_type", "aggregate_id", "version", "schema_version", "created_at")
    list_filter = ("aggregate_type",)
    search_fields = ("aggregate_id",)
    show_full_result_count = False
    paginator = CappedCountPaginator

    def get_search_results(self, request, queryset, search_term):
        try:
            return queryset.filter(aggregate_id=uuid.UUID(search_term.strip())), False
        except ValueError:
            return queryset.none(), False


@admin.register(ProjectionCheckpoint)
class ProjectionCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("name", "status", "position_text", "owner", "heartbeat_at", "last_error")
    actions = ["rebuild_projection"]
    change_list_template = "admin/eventsourcing/projections.html"

    @admin.display(description="position")
    def position_text(self, checkpoint):
        return str(checkpoint.position)

    def has_rebuild_permission(self, request) -> bool:
        # A permission of its own: granting "change" would open the checkpoint's edit form.
        return request.user.is_superuser

    def changelist_view(self, request, extra_context=None):
        extra = {"statuses": projection_statuses(get_event_store()),
                 "changes": checkpoint_changes()}  # fmt: skip
        return super().changelist_view(request, {**(extra_context or {}), **extra})

    @admin.action(description="Rebuild the selected projections", permissions=["rebuild"])
    def rebuild_projection(self, request, queryset):
        names = [c.name for c in queryset if c.name in projection_registry.names()]
        if request.POST.get("confirmed") != "yes":
            context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                       "title": "Rebuild projections?", "names": names,
                       "checkpoints": queryset}  # fmt: skip
            return TemplateResponse(request, "admin/eventsourcing/rebuild_confirm.html", context)
        for name in names:
            projection = projection_registry.get(name)
            if not projection.replayable:
                messages.warning(request, f"{name} acts on events and is never replayed")
                continue
            report = rebuild(projection, get_event_store(), by=request.user.get_username(),
                             reason=request.POST.get("reason", "").strip())  # fmt: skip
            messages.success(request, f"{name}: rebuilt from {report.events_read} events")
        return HttpResponseRedirect(request.get_full_path())


@admin.register(CheckpointChange)
class CheckpointChangeAdmin(ReadOnlyAdmin):
    list_display = ("changed_at", "checkpoint", "kind", "moved", "changed_by", "reason")
    list_filter = ("checkpoint", "kind")
    ordering = ("-changed_at", "-id")

    @admin.display(description="from -> to")
    def moved(self, change: CheckpointChange):
        return f"{change.from_position} -> {change.to_position}"
