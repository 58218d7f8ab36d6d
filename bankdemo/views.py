"""Pages of the demo project."""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import BadRequest, RequestDataTooBig
from django.http import JsonResponse
from django.shortcuts import render
from django.views import defaults

from bankdemo.api.permissions import AUDITORS, TELLERS, in_group
from bankdemo.domain import MINOR_UNITS
from bankdemo.models import AccountBalance, DailyTotal
from eventsourcing_app.models import Event
from eventsourcing_app.projections.status import projection_statuses
from eventsourcing_app.wiring import get_event_store

RECENT_EVENTS = 15
API_PREFIX = "/api/"


def home(request):
    """The bank at a glance: accounts, the newest events, and how current the read models are.

    Owners, balances and who did what are for bank staff (tellers and auditors, as in the API);
    anyone else gets the welcome and a way to sign in.
    """
    if not in_group(request.user, TELLERS, AUDITORS):
        return render(request, "home.html", {"staff": False})
    accounts = list(AccountBalance.objects.order_by("owner")[:50])
    for account in accounts:
        places = MINOR_UNITS.get(account.currency, 2)
        account.shown_balance = account.balance.quantize(Decimal(1).scaleb(-places))
    statuses = {s.name: s for s in projection_statuses(get_event_store())}
    context = {
        "staff": True,
        # Auditors open an account's timeline in the audit UI; tellers, who have no admin, its
        # events in the (browsable) API.
        "audits": can_audit(request.user),
        "accounts": accounts,
        "recent_events": Event.objects.order_by("-transaction_id", "-id")[:RECENT_EVENTS],
        "daily": DailyTotal.objects.order_by("-day", "currency")[:7],
        "daily_status": statuses.get("bank.daily_totals"),
        "statuses": statuses.values(),
    }
    return render(request, "home.html", context)


def can_audit(user) -> bool:
    """May `user` open the audit UI's timelines (the event admin's view permission)?"""
    return user.is_active and user.is_staff and user.has_perm("eventsourcing_app.view_event")


def bad_request(request, exception):
    """400 (413 for a body over the size limit): JSON with a `code` under /api/, the plain page
    elsewhere (the admin)."""
    if not request.path.startswith(API_PREFIX):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        detail = (
            f"the request body is over the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes"
        )
        return JsonResponse({"code": "too_large", "detail": detail}, status=413)
    detail = str(exception) if isinstance(exception, BadRequest) else "the request is malformed"
    return JsonResponse({"code": "bad_request", "detail": detail}, status=400)


def not_found(request, exception):
    """404: JSON with a `code` under /api/ (what API clients parse), the plain page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"code": "not_found", "detail": "no such endpoint"}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """500 without details (they go to the log): JSON under /api/, the plain page elsewhere."""
    if request.path.startswith(API_PREFIX):
        detail = "the server failed; the error is logged"
        return JsonResponse({"code": "server_error", "detail": detail}, status=500)
    return defaults.server_error(request)
