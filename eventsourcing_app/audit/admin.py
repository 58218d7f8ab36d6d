"""The audit UI in the admin: a read-only event browser, timelines, point-in-time state,
comparisons, correlation trails, snapshots and projection status."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal, InvalidOperation

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from eventsourcing_app.audit import timelines as audit
from eventsourcing_app.domain import AggregateNotFound
from eventsourcing_app.domain.aggregate import aggregate_types
from eventsourcing_app.domain.events import registry as event_registry
from eventsourcing_app.models import Event, ProjectionCheckpoint, Snapshot
from eventsourcing_app.projections import registry as projection_registry
from eventsourcing_app.projections.rebuild import rebuild
from eventsourcing_app.projections.status import projection_statuses
from eventsourcing_app.wiring import get_event_store, get_repository

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


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("position", "when", "aggregate", "event_type", "version", "user",
                    "correlation")  # fmt: skip
    list_filter = (AggregateTypeFilter, EventTypeFilter, RecentFilter)
    search_fields = ("aggregate_id",)  # searched exactly, see get_search_results
    search_help_text = "an aggregate id or a correlation id (exact)"
    ordering = ("-transaction_id", "-id")
    show_full_result_count = False
    paginator = CappedCountPaginator
    list_per_page = 100

    @admin.display(description="position", ordering="id")
    def position(self, event: Event):
        return f"{event.transaction_id}-{event.id}"

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
        return event.metadata.get("user_id") or "-"

    @admin.display(description="correlation")
    def correlation(self, event: Event):
        correlation_id = event.metadata.get("correlation_id")
        if not correlation_id:
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
        view = self.admin_site.admin_view
        own = [
            path("timeline/<uuid:aggregate_id>/", view(self.timeline_view),
                 name="eventsourcing_timeline"),
            path("timeline/<uuid:aggregate_id>/state/", view(self.state_view),
                 name="eventsourcing_state"),
            path("timeline/<uuid:aggregate_id>/compare/", view(self.compare_view),
                 name="eventsourcing_compare"),
            path("correlation/<str:correlation_id>/", view(self.correlation_view),
                 name="eventsourcing_correlation"),
        ]  # fmt: skip
        return own + super().get_urls()

    def _context(self, request, title: str, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta,
                "title": title, **extra}  # fmt: skip

    def timeline_view(self, request, aggregate_id):
        self._require_view(request)
        store = get_event_store()
        entries, cls = audit.timeline(store, aggregate_id)
        if not entries:
            raise Http404("no such aggregate")
        report = audit.tamper_check(store, aggregate_id)
        first = entries[0].event
        context = self._context(
            request,
            f"{first.aggregate_type} {aggregate_id}",
            aggregate_id=aggregate_id,
            aggregate_type=first.aggregate_type,
            entries=entries,
            tamper=report,
            chart=_balance_chart(entries),
            known_class=cls is not None,
        )
        return TemplateResponse(request, "admin/eventsourcing/timeline.html", context)

    def state_view(self, request, aggregate_id):
        self._require_view(request)
        point_text = request.GET.get("at", "")
        try:
            point = audit.parse_point(point_text)
        except ValueError:
            messages.error(request, f"{point_text!r} is neither a version nor a date-time")
            point = None
        state = self._load(request, aggregate_id, point) if point is not None else None
        store = get_event_store()
        later = []
        if state is not None:
            later = list(store.read_stream(aggregate_id, after_version=state["version"]))[:200]
        context = self._context(request, f"State of {aggregate_id}", aggregate_id=aggregate_id,
                                point=point_text, state=state, later=later)  # fmt: skip
        return TemplateResponse(request, "admin/eventsourcing/state.html", context)

    def compare_view(self, request, aggregate_id):
        self._require_view(request)
        points = []
        for name in ("a", "b"):
            text = request.GET.get(name, "")
            try:
                point = audit.parse_point(text)
            except ValueError:
                messages.error(request, f"{text!r} is neither a version nor a date-time")
                point = None
            points.append((text, point))
        left = self._load(request, aggregate_id, points[0][1]) if points[0][1] else None
        right = self._load(request, aggregate_id, points[1][1]) if points[1][1] else None
        between, changes = [], []
        if left and right:
            low, high = sorted((left, right), key=lambda s: s["version"])
            between = list(
                get_event_store().read_stream(
                    aggregate_id, after_version=low["version"], to_version=high["version"]
                )
            )
            changes = audit.diff(low["fields"], high["fields"])
        context = self._context(
            request,
            f"Compare two points of {aggregate_id}",
            aggregate_id=aggregate_id,
            a=points[0][0],
            b=points[1][0],
            left=left,
            right=right,
            between=between,
            changes=changes,
        )
        return TemplateResponse(request, "admin/eventsourcing/compare.html", context)

    def correlation_view(self, request, correlation_id):
        self._require_view(request)
        events = list(
            Event.objects.for_correlation(correlation_id).order_by("transaction_id", "id")[:500]
        )
        context = self._context(request, f"Correlation {correlation_id}",
                                correlation_id=correlation_id, events=events)  # fmt: skip
        return TemplateResponse(request, "admin/eventsourcing/correlation.html", context)

    def _require_view(self, request):
        if not self.has_view_permission(request):
            raise Http404("not allowed")

    def _load(self, request, aggregate_id, point):
        first = Event.objects.filter(aggregate_id=aggregate_id).order_by("version").first()
        if first is None:
            raise Http404("no such aggregate")
        cls = aggregate_types.get(first.aggregate_type)
        if cls is None:
            messages.error(request, f"{first.aggregate_type} has no aggregate class here")
            return None
        repository = get_repository(cls)
        try:
            if isinstance(point, int):
                aggregate = repository.load(aggregate_id, version=point)
            else:
                aggregate = repository.load(aggregate_id, as_of=point)
        except (AggregateNotFound, ValueError) as exc:
            messages.error(request, str(exc))
            return None
        return {"version": aggregate.version, "fields": audit.state_of(aggregate)}


def _balance_chart(entries) -> dict | None:
    """Points of an SVG line of `balance` over the events, when the state has one."""
    values = []
    for entry in entries:
        raw = entry.state.get("balance")
        if isinstance(raw, dict):
            raw = raw.get("$decimal")
        try:
            values.append(Decimal(str(raw)))
        except (InvalidOperation, TypeError, ValueError):
            return None
    if len(values) < 2:
        return None
    width, height, pad = 720, 180, 10
    low, high = min([*values, Decimal(0)]), max([*values, Decimal(0)])
    span = (high - low) or Decimal(1)

    def y(value):
        return float(pad + (high - value) / span * (height - 2 * pad))

    step = (width - 2 * pad) / (len(values) - 1)
    points = " ".join(f"{pad + i * step:.1f},{y(v):.1f}" for i, v in enumerate(values))
    return {"width": width, "height": height, "points": points, "zero": f"{y(Decimal(0)):.1f}",
            "low": low, "high": high, "last": values[-1]}  # fmt: skip


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

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser  # only to let superusers run the rebuild action

    def changelist_view(self, request, extra_context=None):
        statuses = projection_statuses(get_event_store())
        return super().changelist_view(request, {**(extra_context or {}), "statuses": statuses})

    @admin.action(description="Rebuild the selected projections", permissions=["change"])
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
            report = rebuild(projection, get_event_store())
            messages.success(request, f"{name}: rebuilt from {report.events_read} events")
        return HttpResponseRedirect(request.get_full_path())
