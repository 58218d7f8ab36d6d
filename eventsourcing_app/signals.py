"""Signals of the event store; receivers are connected in `AppConfig.ready()` of their app."""

from django.dispatch import Signal

# Sent inside the append transaction with `events` (the stored events, in version order) and
# `using` (the database alias); a receiver that raises rolls the append back.
events_appended = Signal()
