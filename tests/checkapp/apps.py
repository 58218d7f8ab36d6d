"""A test app whose events the system checks inspect."""

from django.apps import AppConfig


class CheckAppConfig(AppConfig):
    name = "tests.checkapp"
    label = "checkapp"

    def ready(self) -> None:
        from tests.checkapp import domain  # noqa: F401  (registers events and upcasters)
