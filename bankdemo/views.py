"""Pages of the demo project."""

from django.shortcuts import render

from eventsourcing_app.models import Event

RECENT_EVENTS = 20


def home(request):
    """Show what the store holds: the newest events first."""
    recent = Event.objects.order_by("-transaction_id", "-id")[:RECENT_EVENTS]
    return render(request, "home.html", {"recent_events": recent})
