"""On PostgreSQL, wake projection workers with a NOTIFY when events are committed."""

from django.db import migrations

INSTALL = """
CREATE FUNCTION events_notify_appended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Delivered at commit, once per transaction however many statements appended.
    PERFORM pg_notify('eventsourcing_events', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER events_notify_appended AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify_appended();
"""

UNINSTALL = """
DROP TRIGGER IF EXISTS events_notify_appended ON events;
DROP FUNCTION IF EXISTS events_notify_appended();
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(INSTALL, params=None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNINSTALL, params=None)


class Migration(migrations.Migration):
    dependencies = [("eventsourcing_app", "0003_projection_checkpoints")]

    operations = [migrations.RunPython(install, uninstall)]
