"""The audit views: an aggregate's timeline, its state at a point, two points compared, and a
correlation trail. Mixed into the event admin, whose permissions and admin site they use."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path

from eventsourcing_app.audit import charts, export, timelines
from eventsourcing_app.core.errors import AggregateNotFound
from eventsourcing_app.core.repository import Repository
from eventsourcing_app.domain.aggregate import aggregate_types
from eventsourcing_app.models import Event
from eventsourcing_app.wiring import get_event_store


class AuditViews:
    """The audit pages of a ModelAdmin over events."""

    def audit_urls(self) -> list:
        view = self.admin_site.admin_view
        return [
            path("timeline/<uuid:aggregate_id>/", view(self.timeline_view),
                 name="eventsourcing_timeline"),
            path("timeline/<uuid:aggregate_id>/state/", view(self.state_view),
                 name="eventsourcing_state"),
            path("timeline/<uuid:aggregate_id>/compare/", view(self.compare_view),
                 name="eventsourcing_compare"),
            path("correlation/<path:correlation_id>/", view(self.correlation_view),
                 name="eventsourcing_correlation"),
            *export.urls(self),
        ]  # fmt: skip

    def _context(self, request, title: str, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta,
                "title": title, **extra}  # fmt: skip

    def timeline_view(self, request, aggregate_id):
        self._require_view(request)
        store = get_event_store()
        checked = timelines.integrity(store, aggregate_id)
        # A stream the log lost entirely but the ledger sealed still has a page: its breaks.
        aggregate_type = "Deleted stream"
        try:
            entries, cls = timelines.timeline(store, aggregate_id)
        except timelines.UNREADABLE as exc:  # an altered row the recorder cannot read
            entries, cls, aggregate_type = [], None, "Unreadable stream"
            checked.problem = checked.problem or timelines.unreadable(exc)
        if not entries and checked.intact:
            raise Http404("no such aggregate")
        timelines.mark(entries, checked)
        if entries:
            aggregate_type = entries[0].event.aggregate_type
        context = self._context(
            request,
            f"{aggregate_type} {aggregate_id}",
            aggregate_id=aggregate_id,
            aggregate_type=aggregate_type,
            entries=entries,
            integrity=checked,
            carded={entry.event.id for entry in entries},
            chart=charts.chart(
                aggregate_type,
                [entry.state for entry in entries],
                [entry.event.created_at for entry in entries],
            ),
            known_class=cls is not None,
        )
        return TemplateResponse(request, "admin/eventsourcing/timeline.html", context)

    def state_view(self, request, aggregate_id):
        self._require_view(request)
        point_text = request.GET.get("at", "")
        try:
            point = timelines.parse_point(point_text)
        except ValueError:
            messages.error(request, f"{point_text!r} is neither a version nor a date-time")
            point = None
        store = get_event_store()
        checked = timelines.integrity(store, aggregate_id) if point is not None else None
        if checked is not None and not checked.intact:
            return self._refuse(request, "state.html", f"State of {aggregate_id}", checked,
                                aggregate_id=aggregate_id, point=point_text)  # fmt: skip
        state = self._load(request, aggregate_id, point) if point is not None else None
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
                point = timelines.parse_point(text)
            except ValueError:
                messages.error(request, f"{text!r} is neither a version nor a date-time")
                point = None
            points.append((text, point))
        title = f"Compare two points of {aggregate_id}"
        checked = None
        if points[0][1] or points[1][1]:
            checked = timelines.integrity(get_event_store(), aggregate_id)
        if checked is not None and not checked.intact:
            return self._refuse(request, "compare.html", title, checked, aggregate_id=aggregate_id,
                                a=points[0][0], b=points[1][0])  # fmt: skip
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
            changes = timelines.diff(low["fields"], high["fields"])
        context = self._context(
            request,
            title,
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

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        """The event page: the event's fields, its integrity and its entry in the ledger."""
        if obj is not None:
            store = get_event_store()
            checked = timelines.integrity(store, obj.aggregate_id)
            using = getattr(store.recorder, "using", "default")
            context.update(
                integrity=checked,
                event_breaks=checked.breaks_of(obj.id),
                ledger=timelines.entry_in_ledger(obj.id, obj.hash, using),
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _refuse(self, request, template, title, checked, **extra):
        """Answer a replay of a stream that is not intact with its breaks, not forged state.

        The same refusal as the API's 409 `integrity_broken`: state replayed from altered or
        missing events would look sound, so the page shows what is broken instead.
        """
        context = self._context(request, title, refused=checked, **extra)
        return TemplateResponse(request, f"admin/eventsourcing/{template}", context, status=409)

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
        # Replayed from the events alone, which the page has just verified: a snapshot is a
        # cache that no integrity check covers, and a forged one must not show as state.
        repository = Repository(cls, get_event_store())
        try:
            if isinstance(point, int):
                aggregate = repository.load(aggregate_id, version=point)
            else:
                aggregate = repository.load(aggregate_id, as_of=point)
        except (AggregateNotFound, ValueError) as exc:
            messages.error(request, str(exc))
            return None
        return {"version": aggregate.version, "fields": timelines.state_of(aggregate)}
