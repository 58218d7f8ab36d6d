"""The data subjects in the admin: who has personal data in the events, who was forgotten, when,
by whom and why, and the action that forgets a subject (for privacy officers)."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from eventsourcing_app.audit.display import utc
from eventsourcing_app.audit.readonly import ReadOnlyAdmin
from eventsourcing_app.core.errors import DomainError
from eventsourcing_app.models import Event, PersonalDataKey
from eventsourcing_app.privacy.erasure import MAX_REASON, forget_subject

# Never the wrapped key: the list and the page read these columns only.
SHOWN = ("key_id", "subject", "created_at", "forgotten_at", "forgotten_by", "reason")


class ForgetForm(forms.Form):
    reason = forms.CharField(
        max_length=MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Why the subject is forgotten (a request's reference, say): recorded with the "
        "erasure and shown wherever their data was.",
    )


@admin.register(PersonalDataKey)
class DataSubjectAdmin(ReadOnlyAdmin):
    list_display = ("subject_link", "created", "forgotten", "forgotten_by", "reason")
    fields = ("subject", "key_id", "created", "forgotten", "forgotten_by", "reason")
    readonly_fields = ("created", "forgotten")
    search_fields = ("subject",)  # exactly or by its start, see get_search_results
    search_help_text = "a data subject (an account id, say) or its first characters"
    actions = ["forget_subjects"]
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).only(*SHOWN)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(subject__startswith=term), False

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        streams = _streams([key.subject for key in changelist.result_list])
        for key in changelist.result_list:  # the rows the list shows, evaluated once
            key.stream = streams.get(key.subject)
        return changelist

    @admin.display(description="subject", ordering="subject")
    def subject_link(self, key: PersonalDataKey):
        """The subject, linked to its timeline when it is a stream's id."""
        stream = getattr(key, "stream", None)
        if stream is None:
            return key.subject
        url = reverse("admin:eventsourcing_timeline", args=[stream[0]])
        return format_html('<a href="{}" title="the timeline of {} {}">{}</a>', url, stream[1],
                           stream[0], key.subject)  # fmt: skip

    @admin.display(description="created at (UTC)", ordering="created_at")
    def created(self, key: PersonalDataKey) -> str:
        return utc(key.created_at)

    @admin.display(description="forgotten at (UTC)", ordering="forgotten_at")
    def forgotten(self, key: PersonalDataKey) -> str:
        return utc(key.forgotten_at)

    def has_forget_permission(self, request) -> bool:
        return request.user.has_perm("eventsourcing_app.forget_subject")

    @admin.action(description="Forget the selected data subjects", permissions=["forget"])
    def forget_subjects(self, request, queryset):
        """Ask for the reason on a page of its own, then forget each subject selected."""
        keys = list(queryset)
        subjects = _by_subject(keys)
        form = ForgetForm(request.POST if request.POST.get("confirmed") == "yes" else None)
        if not form.is_valid():
            if form.is_bound:
                messages.error(request, "Give the reason for the erasure: nothing was erased.")
            context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                       "title": "Forget these data subjects?", "keys": keys, "form": form,
                       "subjects": subjects,
                       "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME}  # fmt: skip
            return TemplateResponse(request, "admin/eventsourcing/forget_confirm.html", context)
        by = request.user.get_username()
        for subject in subjects:
            try:
                erasure = forget_subject(subject, reason=form.cleaned_data["reason"], by=by,
                                         using=queryset.db)  # fmt: skip
            except DomainError as exc:  # refused (ErasureRefused.code), or a key that won't open
                messages.error(request, f"{subject}: {exc}")
                continue
            messages.success(
                request,
                f"Forgot the subject {subject}: their data keys are destroyed and the personal "
                f"fields of {erasure.events} event(s) read as erased from now on.",
            )
        return HttpResponseRedirect(request.get_full_path())


def _by_subject(keys: list[PersonalDataKey]) -> dict[str, PersonalDataKey | None]:
    """Each subject of `keys` once (a subject may hold several keys, and forgetting it destroys
    them all), with its latest erasure when every key of it is forgotten already."""
    held: dict[str, list[PersonalDataKey]] = {}
    for key in keys:
        held.setdefault(key.subject, []).append(key)
    return {subject: max(rows, key=lambda key: key.forgotten_at)
            if all(key.forgotten for key in rows) else None
            for subject, rows in held.items()}  # fmt: skip


def _streams(subjects: list[str]) -> dict[str, tuple[uuid.UUID, str]]:
    """The stream id and aggregate type of each subject that is a stream's id, in one query."""
    ids = {}
    for subject in subjects:
        try:
            ids[uuid.UUID(subject)] = subject
        except ValueError:
            continue
    if not ids:
        return {}
    first = Event.objects.filter(aggregate_id__in=list(ids), version=1)
    return {ids[aggregate_id]: (aggregate_id, aggregate_type)
            for aggregate_id, aggregate_type in first.values_list("aggregate_id",
                                                                  "aggregate_type")}  # fmt: skip
