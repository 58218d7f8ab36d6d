"""Register the audit UI with the admin (Django's admin autodiscovery imports this module)."""

from eventsourcing_app.audit import admin  # noqa: F401
