"""The audit views: an aggregate's timeline, its state at a point, two points compared, and a
correlation trail. Mixed into the event admin, whose permissions and admin site they use."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.paginator import InvalidPage, Paginator
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from eventsourcing_app.audit import charts, export, paging, timelines
from eventsourcing_app.core.errors import AggregateNotFound
from eventsourcing_app.core.mapper import EventMapper
from eventsourcing_app.core.repository import Repository
from eventsourcing_app.domain.aggregate import aggregate_types
from eventsourcing_app.models import Event
from eventsourcing_app.privacy.disclosure import personal_keys
from eventsourcing_app.wiring import get_event_store

TRAIL_PAGE = 200


# Events listed after a state or between two compared points (the timeline pages the rest).
LISTED = 200


def store_using(store) -> str:
    return getattr(store.recorder, "using", "default")


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
        """One page of the stream's timeline; `?page=N|last`, `?version=V` and `?date=ISO`
        jump to the page that holds a version or the last event at or before a date-time, and
        `?check=stream` verifies the whole of a long stream."""
        self._require_view(request)
        store = get_event_store()
        using = store_using(store)
        count, head = paging.extent(aggregate_id, using)
        jump = self._jump(request, store, aggregate_id, head)
        if jump is not None:
            return jump
        try:
            number = paging.page_number(head, request.GET.get("page"))
        except ValueError as exc:
            messages.error(request, str(exc))
            number = 1
        page = paging.Page(number, count, head)
        aggregate_type, cls = "Deleted stream", None
        try:
            rows = list(store.read_stream(aggregate_id, after_version=max(page.first - 2, 0),
                                          to_version=page.last))  # fmt: skip
        except timelines.UNREADABLE as exc:  # an altered row the recorder cannot read
            rows, aggregate_type = [], "Unreadable stream"
            unreadable = timelines.unreadable(exc)
        else:
            unreadable = ""
        predecessor = rows[0] if rows and rows[0].version == page.first - 1 else None
        events = [row for row in rows if row.version >= page.first]
        if rows:
            aggregate_type = rows[0].aggregate_type
            cls = aggregate_types.get(aggregate_type)
        whole = page.whole_check or (request.GET.get("check") == "stream" and page.check_link)
        if whole or unreadable:
            checked = timelines.integrity(store, aggregate_id)
        else:
            checked = timelines.page_integrity(aggregate_id, page, predecessor, events, using)
        checked.problem = checked.problem or unreadable
        if not rows and not count and checked.intact:
            raise Http404("no such aggregate")
        mapper = EventMapper()
        # One look-up of the keys for the page (and the replay before it), one of the erasures.
        personal = personal_keys(
            mapper, [(row.event_type, row.data) for row in rows], using, stream=aggregate_id
        )
        timelines.forget_replayed_states(using, aggregate_id, personal)
        prior = paging.replay_before(store, aggregate_id, cls, page, predecessor,
                                     timelines.replayer(mapper, personal))  # fmt: skip
        entries = timelines.entries_of(events, prior.aggregate, mapper, personal)
        timelines.mark(entries, checked)
        context = self._context(
            request,
            f"{aggregate_type} {aggregate_id}",
            aggregate_id=aggregate_id,
            aggregate_type=aggregate_type,
            entries=entries,
            page=page,
            prior=prior,
            integrity=checked,
            personal=personal,
            carded={entry.event.id for entry in entries},
            chart=charts.chart(
                aggregate_type,
                [entry.state for entry in entries],
                [entry.event.created_at for entry in entries],
            ),
            known_class=cls is not None,
            jump_version=request.GET.get("version", ""),
            jump_date=request.GET.get("date", ""),
        )
        return TemplateResponse(request, "admin/eventsourcing/timeline.html", context)

    def _jump(self, request, store, aggregate_id, head):
        """Redirect `?version=` or `?date=` to the page that holds it, at its card."""
        version_text = request.GET.get("version", "").strip()
        date_text = request.GET.get("date", "").strip()
        if not version_text and not date_text:
            return None
        try:
            if version_text:
                point = timelines.parse_point(version_text)
                if not isinstance(point, int):
                    raise ValueError(f"{version_text!r} is not a version number")
                version = point
            else:
                point = timelines.parse_point(date_text)
                if not isinstance(point, dt.datetime):
                    raise ValueError(f"{date_text!r} is not a date-time")
                version = paging.version_at(store, aggregate_id, point)
                if version == 0:
                    messages.info(request, f"no event of this stream is at or before {date_text}")
        except ValueError as exc:
            messages.error(request, str(exc) or "not a version or a date-time")
            return None
        version = min(max(version, 1), max(head, 1))
        url = reverse("admin:eventsourcing_timeline", args=[aggregate_id])
        return HttpResponseRedirect(f"{url}?page={paging.page_of_version(version)}#v{version}")

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
            later = list(store.read_stream(aggregate_id, after_version=state["version"],
                                           to_version=state["version"] + LISTED))  # fmt: skip
        later_total = 0
        if state is not None:
            later_total = paging.extent(aggregate_id, store_using(store))[1] - state["version"]
        context = self._context(request, f"State of {aggregate_id}", aggregate_id=aggregate_id,
                                point=point_text, state=state, later=later,
                                later_total=later_total)  # fmt: skip
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
        between, changes, between_total = [], [], 0
        if left and right:
            low, high = sorted((left, right), key=lambda s: s["version"])
            to_version = min(high["version"], low["version"] + LISTED)
            between = list(
                get_event_store().read_stream(
                    aggregate_id, after_version=low["version"], to_version=to_version
                )
            )
            changes = timelines.diff(low["fields"], high["fields"])
            between_total = high["version"] - low["version"]
        context = self._context(
            request,
            title,
            aggregate_id=aggregate_id,
            a=points[0][0],
            b=points[1][0],
            left=left,
            right=right,
            between=between,
            between_total=between_total,
            changes=changes,
        )
        return TemplateResponse(request, "admin/eventsourcing/compare.html", context)

    def correlation_view(self, request, correlation_id):
        self._require_view(request)
        trail = Event.objects.for_correlation(correlation_id).order_by("transaction_id", "id")
        text = request.GET.get("page", "")
        date_text = request.GET.get("date", "").strip()
        paginator = Paginator(trail, TRAIL_PAGE)
        number = 1
        try:
            if date_text:
                moment = timelines.parse_point(date_text)
                if not isinstance(moment, dt.datetime):
                    raise ValueError(f"{date_text!r} is not a date-time")
                earlier = trail.filter(created_at__lt=moment).count()
                number = earlier // TRAIL_PAGE + 1
            elif text:
                number = paginator.num_pages if text == "last" else int(text)
            current = paginator.page(number)
        except (ValueError, InvalidPage):
            messages.error(request, f"{text or date_text!r} is not a page of this trail")
            current = paginator.page(1)
        context = self._context(
            request,
            f"Correlation {correlation_id}",
            correlation_id=correlation_id,
            events=current.object_list,
            total=paginator.count,
            page=paging.TrailPage(current.number, paginator.num_pages),
            first_row=current.start_index(),
            last_row=current.end_index(),
            jump_date=date_text,
        )
        return TemplateResponse(request, "admin/eventsourcing/correlation.html", context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        """The event page: the event's fields, its personal data opened (or the record of its
        erasure), its integrity and its entry in the ledger."""
        if obj is not None:
            store = get_event_store()
            checked = timelines.integrity(store, obj.aggregate_id)
            using = store_using(store)
            sealed = [(obj.event_type, obj.event_data)]
            personal = personal_keys(EventMapper(), sealed, using)
            context.update(
                integrity=checked,
                event_breaks=checked.breaks_of(obj.id),
                ledger=timelines.entry_in_ledger(obj.id, obj.hash, using),
                personal=personal.disclose(obj.event_type, obj.event_data),
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
