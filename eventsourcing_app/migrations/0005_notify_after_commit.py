"""Send the new-events NOTIFY after the append commits, not from a trigger inside it.

A NOTIFY in a transaction makes its commit take PostgreSQL's one notification lock and hold it
while the commit record is flushed to disk, so concurrent appenders committed one at a time:
four writers appended at about half the rate of plain inserts. The recorder now notifies in a
transaction of its own once the append has committed (see DjangoRecorder.insert).
"""

import importlib

from django.db import migrations

trigger = importlib.import_module("eventsourcing_app.migrations.0004_notify_on_append")


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(trigger.UNINSTALL, params=None)


def restore_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(trigger.INSTALL, params=None)


class Migration(migrations.Migration):
    dependencies = [("eventsourcing_app", "0004_notify_on_append")]

    operations = [migrations.RunPython(drop_trigger, restore_trigger)]
