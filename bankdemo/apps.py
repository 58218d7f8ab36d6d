"""The demo bank app."""

from django.apps import AppConfig


class BankDemoConfig(AppConfig):
    name = "bankdemo"
    verbose_name = "Bank demo"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from bankdemo import domain  # noqa: F401  (registers the bank's events and aggregates)
        from bankdemo.privacy import redact_stored_responses
        from bankdemo.staff import ensure_staff_groups
        from eventsourcing_app.privacy.erasure import subject_forgotten

        post_migrate.connect(ensure_staff_groups, dispatch_uid="bankdemo-staff-groups")
        subject_forgotten.connect(redact_stored_responses, dispatch_uid="bankdemo-redact")
