"""A test app with read models built from the sample account events."""

from django.apps import AppConfig


class ProjectionAppConfig(AppConfig):
    name = "tests.projectionapp"
    label = "projectionapp"
    default_auto_field = "django.db.models.BigAutoField"
