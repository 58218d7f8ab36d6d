"""App configuration for the event store."""

from django.apps import AppConfig


class EventsourcingConfig(AppConfig):
    name = "eventsourcing_app"
    verbose_name = "Event store"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from eventsourcing_app import checks  # noqa: F401  (registers the system checks)
