"""Storage backends on Django's databases: one recorder per database, snapshots beside them.

The recorder of a database is chosen by its Django backend (`connection.vendor`); its module is
imported only when a database of that kind is used, so SQLite needs no PostgreSQL driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from eventsourcing_app.backends.base import DjangoRecorder

RECORDERS = {
    "postgresql": "eventsourcing_app.backends.postgresql.PostgreSQLRecorder",
    "sqlite": "eventsourcing_app.backends.sqlite.SQLiteRecorder",
}


def recorder_class(using: str = "default") -> type[DjangoRecorder]:
    """Return the recorder class for the Django database `using`."""
    vendor = connections[using].vendor
    if vendor not in RECORDERS:
        raise ImproperlyConfigured(
            f"the event store has no recorder for the {vendor} database {using!r}; "
            f"it runs on {' and '.join(sorted(RECORDERS))}"
        )
    return import_string(RECORDERS[vendor])
