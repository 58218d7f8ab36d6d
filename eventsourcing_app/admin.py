"""Register the audit UI with the admin (Django's admin autodiscovery imports this module)."""

from eventsourcing_app.audit import admin  # noqa: F401
from eventsourcing_app.privacy import admin as privacy_admin  # noqa: F401
