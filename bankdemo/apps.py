"""The demo bank app."""

from django.apps import AppConfig


class BankDemoConfig(AppConfig):
    name = "bankdemo"
    verbose_name = "Bank demo"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from bankdemo import domain  # noqa: F401  (registers the bank's events and aggregates)
