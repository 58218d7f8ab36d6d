"""App configuration for the event store."""

from django.apps import AppConfig


class EventsourcingConfig(AppConfig):
    name = "eventsourcing_app"
    verbose_name = "Event store"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from eventsourcing_app import checks  # noqa: F401  (registers the system checks)
        from eventsourcing_app.core import personal
        from eventsourcing_app.privacy.keyring import DjangoKeyRing
        from eventsourcing_app.projections import apply_inline
        from eventsourcing_app.signals import events_appended

        # Mappers built without a cipher (projections, pages) open personal fields with this.
        personal.install(personal.Cipher(DjangoKeyRing("default")))
        autodiscover_modules("projections")
        events_appended.connect(apply_inline, dispatch_uid="eventsourcing-inline-projections")
