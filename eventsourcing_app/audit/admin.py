"""The audit UI's ModelAdmin options: a read-only event browser (its audit pages are in
`views.py`), snapshots, projection status with a rebuild action, and the checkpoint changes."""

from __future__ import annotations

import datetime as dt
import re
import uuid

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Q
from django.db.models.lookups import Exact, IsNull
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from eventsourcing_app.audit.display import json_block, utc
from eventsourcing_app.audit.readonly import ReadOnlyAdmin
from eventsourcing_app.audit.views import AuditViews
from eventsourcing_app.domain.aggregate import aggregate_types
from eventsourcing_app.domain.codec import decode_tagged
from eventsourcing_app.domain.events import registry as event_registry
from eventsourcing_app.models import (
    REBUILD_STALE_AFTER,
    CheckpointChange,
    CorrelationId,
    Event,
    ProjectionCheckpoint,
    Snapshot,
    Username,
)
from eventsourcing_app.projections import background
from eventsourcing_app.projections import registry as projection_registry
from eventsourcing_app.projections.status import checkpoint_changes, projection_statuses
from eventsourcing_app.wiring import get_event_store

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Count at most COUNT_CAP rows: paging stays fast on millions of events."""

    @cached_property
    def count(self) -> int:
        return self.object_list[: COUNT_CAP + 1].count()


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


class DateRangeFilter(admin.ListFilter):
    """Events created from one date (or date-time, UTC) to another, both ends included.

    Bounds the created_at index; a date that does not parse is ignored with a warning.
    """

    title = "date range (UTC)"
    template = "admin/eventsourcing/date_range_filter.html"
    parameters = ("created_from", "created_to")

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        self.values = {}
        for name in self.parameters:
            if name in params:
                value = params.pop(name)
                value = value[-1] if isinstance(value, list) else value
                self.values[name] = (value or "").strip()
        self.bounds = {}
        for name, text in self.values.items():
            if not text:
                continue
            try:
                self.bounds[name] = parse_bound(text, upper=name == "created_to")
            except ValueError:
                messages.warning(request, f"{text!r} is not a date (YYYY-MM-DD) or a date-time")

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return list(self.parameters)

    def choices(self, changelist):
        # The other parameters of the page, kept as hidden fields of the filter's form.
        kept = [(name, value) for name, values in changelist.filter_params.items()
                if name not in self.parameters for value in values]  # fmt: skip
        yield {
            "kept": kept,
            "created_from": self.values.get("created_from", ""),
            "created_to": self.values.get("created_to", ""),
            "clear_url": changelist.get_query_string(remove=list(self.parameters)),
            "active": bool(self.bounds),
        }

    def queryset(self, request, queryset):
        if "created_from" in self.bounds:
            queryset = queryset.filter(created_at__gte=self.bounds["created_from"])
        if "created_to" in self.bounds:
            bound, inclusive = self.bounds["created_to"]
            lookup = "created_at__lte" if inclusive else "created_at__lt"
            queryset = queryset.filter(**{lookup: bound})
        return queryset


def parse_bound(text: str, *, upper: bool):
    """A date range's end as an aware UTC date-time. A lower end is the start of its day; an
    upper one is `(the next day's start, exclusive)` for a date, `(itself, inclusive)` for a
    date-time."""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        moment = dt.datetime.fromisoformat(text)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        return (moment, True) if upper else moment
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return (start + dt.timedelta(days=1), False) if upper else start


class UserFilter(admin.SimpleListFilter):
    """Events a user made: the `username` in their metadata, or, for events recorded before
    usernames were, the `user_id` of the user of that name."""

    title = "user"
    parameter_name = "user"
    max_choices = 200

    def lookups(self, request, model_admin):
        names = get_user_model().objects.order_by("username").values_list("username", flat=True)
        return [(name, name) for name in names[: self.max_choices]]

    def queryset(self, request, queryset):
        name = self.value()
        if not name:
            return queryset
        return queryset.filter(by_user(name))


def by_user(username: str) -> Q:
    """Events whose metadata names `username`, or whose metadata has no username but the id of
    the user called so: both on the username index (`Username()`, as the index spells it)."""
    condition = Q(Exact(Username(), username))
    user_id = (
        get_user_model().objects.filter(username=username).values_list("pk", flat=True).first()
    )
    if user_id is not None:
        condition |= Q(IsNull(Username(), True), metadata__user_id=str(user_id))
    return condition


HEX_PREFIX = re.compile(r"^[0-9a-f]{1,32}$")


def uuid_prefix_range(term: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The lowest and highest UUID that start with `term` (hex digits, dashes allowed), or None
    when `term` is no such prefix."""
    digits = term.lower().replace("-", "")
    if not HEX_PREFIX.match(digits):
        return None
    return uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))


def search_ids(queryset, term: str):
    """Rows whose aggregate id is `term` or starts with it: a range scan on the aggregate id
    index (no text LIKE), the same on SQLite and PostgreSQL."""
    bounds = uuid_prefix_range(term)
    if bounds is None:
        return queryset.none()
    return queryset.filter(aggregate_id__gte=bounds[0], aggregate_id__lte=bounds[1])


def _metadata(event: Event) -> dict:
    """An event's metadata, or nothing when a row altered behind the triggers holds no object."""
    return event.metadata if isinstance(event.metadata, dict) else {}


@admin.register(Event)
class EventAdmin(AuditViews, ReadOnlyAdmin):
    list_display = ("position", "when", "aggregate", "event_type", "version", "user",
                    "reason", "correlation")  # fmt: skip
    list_filter = (AggregateTypeFilter, EventTypeFilter, UserFilter, RecentFilter, DateRangeFilter)
    search_fields = ("aggregate_id",)  # by prefix or exactly, see get_search_results
    search_help_text = "an aggregate id or its first characters (such as 3f2a), or a correlation id"
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
        return utc(event.created_at)

    @admin.display(description="aggregate")
    def aggregate(self, event: Event):
        url = reverse("admin:eventsourcing_timeline", args=[event.aggregate_id])
        return format_html('<a href="{}">{} {}</a>', url, event.aggregate_type,
                           str(event.aggregate_id)[:8])  # fmt: skip

    @admin.display(description="user")
    def user(self, event: Event):
        """The username recorded then (the id on hover); the id alone for older events."""
        metadata = _metadata(event)
        user_id, username = metadata.get("user_id"), metadata.get("username")
        if not username:
            return user_id or "-"
        return format_html('<span title="user id {}">{}</span>', user_id or "-", username)

    @admin.display(description="reason")
    def reason(self, event: Event):
        """Why the command was given, cut to fit a column (in full on hover)."""
        reason = _metadata(event).get("reason")
        if not reason or not isinstance(reason, str):
            return "-"
        short = reason if len(reason) <= 60 else f"{reason[:59]}…"
        return format_html('<span title="{}">{}</span>', reason, short)

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
            pass
        if uuid_prefix_range(term) is None:
            return queryset.for_correlation(term), False
        # A hex prefix: the aggregates whose id it starts (a range on the aggregate id index),
        # or a correlation of exactly that id (its own index).
        low, high = uuid_prefix_range(term)
        prefixed = Q(aggregate_id__gte=low, aggregate_id__lte=high)
        return queryset.alias(correlation=CorrelationId()).filter(
            prefixed | Q(correlation=term)
        ), False

    def get_urls(self):
        return self.audit_urls() + super().get_urls()

    # The event page: the stored data and metadata as pretty JSON, the date in the one form.
    fields = ("aggregate_id", "aggregate_type", "event_type", "version", "schema_version",
              "data_as_stored", "metadata_json", "created", "hash", "previous_hash",
              "trails")  # fmt: skip
    readonly_fields = ("data_as_stored", "metadata_json", "created", "trails")

    @admin.display(description="data as stored")
    def data_as_stored(self, event: Event):
        return json_block(event.event_data)

    @admin.display(description="metadata")
    def metadata_json(self, event: Event):
        return json_block(event.metadata)

    @admin.display(description="created at (UTC)")
    def created(self, event: Event):
        return utc(event.created_at)

    @admin.display(description="audit trails")
    def trails(self, event: Event):
        """The event page's way to its timeline, its correlation trail and what caused it."""
        return audit_links(event)

    def history_view(self, request, object_id, extra_context=None):
        """An event's history is its aggregate's timeline, at the event."""
        event = self.get_object(request, object_id)
        if event is None or not self.has_view_permission(request, event):
            return super().history_view(request, object_id, extra_context)
        url = reverse("admin:eventsourcing_timeline", args=[event.aggregate_id])
        return HttpResponseRedirect(f"{url}#v{event.version}")


def causation_url(causation_id) -> str | None:
    """Where a causation id leads: the event it names ("event:<id>"), else the trail of the
    request or job of that id."""
    if not causation_id or not isinstance(causation_id, str):
        return None
    kind, _, rest = causation_id.partition(":")
    if kind == "event" and rest.isdigit():
        return reverse("admin:eventsourcing_app_event_change", args=[rest])
    return reverse("admin:eventsourcing_correlation", args=[causation_id])


def audit_links(event: Event):
    """Links from one event: its timeline, its correlation trail, its cause."""
    metadata = _metadata(event)
    timeline = reverse("admin:eventsourcing_timeline", args=[event.aggregate_id])
    html = format_html('<a href="{}#v{}" class="es-timeline-link">timeline of {} {}</a>',
                       timeline, event.version, event.aggregate_type,
                       event.aggregate_id)  # fmt: skip
    correlation_id = metadata.get("correlation_id")
    if correlation_id and isinstance(correlation_id, str):
        url = reverse("admin:eventsourcing_correlation", args=[correlation_id])
        html += format_html(' · <a href="{}" class="es-correlation-link">correlation {}</a>',
                            url, correlation_id)  # fmt: skip
    causation_id = metadata.get("causation_id")
    url = causation_url(causation_id)
    if url:
        html += format_html(' · <a href="{}" class="es-causation-link">caused by {}</a>',
                            url, causation_id)  # fmt: skip
    return html


@admin.register(Snapshot)
class SnapshotAdmin(ReadOnlyAdmin):
    list_display = ("aggregate_type", "aggregate_id", "version", "schema_version", "created")
    fields = ("aggregate_type", "aggregate_id", "version", "schema_version", "created",
              "state_json", "state_as_stored")  # fmt: skip
    readonly_fields = ("created", "state_json", "state_as_stored")

    class Media:
        css = {"all": ["eventsourcing_app/audit.css"]}

    @admin.display(description="created at (UTC)", ordering="created_at")
    def created(self, snapshot: Snapshot):
        return utc(snapshot.created_at)

    @admin.display(description="state")
    def state_json(self, snapshot: Snapshot):
        """The state with its tagged values read (`"0"`, not `{"$decimal": "0"}`)."""
        try:
            state = decode_tagged(snapshot.state)
        except (TypeError, ValueError, ArithmeticError):
            state = snapshot.state
        return json_block(state)

    @admin.display(description="state as stored")
    def state_as_stored(self, snapshot: Snapshot):
        return json_block(snapshot.state)

    list_filter = ("aggregate_type",)
    search_fields = ("aggregate_id",)
    show_full_result_count = False
    paginator = CappedCountPaginator

    search_help_text = "an aggregate id or its first characters"

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:  # no search: every snapshot
            return queryset, False
        return search_ids(queryset, term), False


@admin.register(ProjectionCheckpoint)
class ProjectionCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("name", "status", "position_text", "owner", "heartbeat", "last_error")
    actions = ["rebuild_projection"]
    change_list_template = "admin/eventsourcing/projections.html"

    @admin.display(description="heartbeat", ordering="heartbeat_at")
    def heartbeat(self, checkpoint) -> str:
        return utc(checkpoint.heartbeat_at)

    @admin.display(description="position")
    def position_text(self, checkpoint):
        return str(checkpoint.position)

    def has_rebuild_permission(self, request) -> bool:
        # A permission of its own: granting "change" would open the checkpoint's edit form.
        return request.user.is_superuser

    def changelist_view(self, request, extra_context=None):
        runs = background.latest_runs()
        extra = {"statuses": projection_statuses(get_event_store()),
                 "changes": checkpoint_changes(), "runs": runs,
                 "rebuilding": {r.projection for r in runs if r.state in ("waiting", "running")},
                 "stale_seconds": int(REBUILD_STALE_AFTER.total_seconds())}  # fmt: skip
        return super().changelist_view(request, {**(extra_context or {}), **extra})

    @admin.action(description="Rebuild the selected projections", permissions=["rebuild"])
    def rebuild_projection(self, request, queryset):
        names = [c.name for c in queryset if c.name in projection_registry.names()]
        if request.POST.get("confirmed") != "yes":
            context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                       "title": "Rebuild projections?", "names": names,
                       "checkpoints": queryset}  # fmt: skip
            return TemplateResponse(request, "admin/eventsourcing/rebuild_confirm.html", context)
        replayable = []
        for name in names:
            if projection_registry.get(name).replayable:
                replayable.append(name)
            else:
                messages.warning(request, f"{name} acts on events and is never replayed")
        runs, refused = background.start(replayable, by=request.user.get_username(),
                                         reason=request.POST.get("reason", "").strip())  # fmt: skip
        for name in refused:
            messages.warning(request, f"{name}: a rebuild is running already; wait for it to end")
        if runs:
            started = ", ".join(run.projection for run in runs)
            messages.success(request, f"Rebuild started in the background: {started}; "
                             "its progress is shown below")  # fmt: skip
        return HttpResponseRedirect(request.get_full_path())


@admin.register(CheckpointChange)
class CheckpointChangeAdmin(ReadOnlyAdmin):
    list_display = ("changed", "checkpoint", "kind", "moved", "changed_by", "reason")
    list_filter = ("checkpoint", "kind")
    ordering = ("-changed_at", "-id")

    @admin.display(description="changed at (UTC)", ordering="changed_at")
    def changed(self, change: CheckpointChange):
        return utc(change.changed_at)

    @admin.display(description="from -> to")
    def moved(self, change: CheckpointChange):
        return f"{change.from_position} -> {change.to_position}"
