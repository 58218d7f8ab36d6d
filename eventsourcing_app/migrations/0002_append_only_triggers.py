"""Install database triggers that refuse UPDATE, DELETE and TRUNCATE on the events table."""

from django.db import migrations

POSTGRESQL_INSTALL = """
CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Test suites empty tables with TRUNCATE between tests; they opt in per session.
    IF TG_OP = 'TRUNCATE' AND current_setting('eventsourcing.allow_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'events is append-only: % refused', TG_OP
        USING HINT = 'Stored events never change; append a compensating event instead.';
END
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();
"""

POSTGRESQL_UNINSTALL = """
DROP TRIGGER IF EXISTS events_no_truncate ON events;
DROP TRIGGER IF EXISTS events_append_only ON events;
DROP FUNCTION IF EXISTS events_refuse_change();
"""

SQLITE_INSTALL = [
    "CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN "
    "SELECT RAISE(ABORT, 'events is append-only: UPDATE refused'); END",
    "CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN "
    "SELECT RAISE(ABORT, 'events is append-only: DELETE refused'); END",
]

SQLITE_UNINSTALL = [
    "DROP TRIGGER IF EXISTS events_no_update",
    "DROP TRIGGER IF EXISTS events_no_delete",
]


def _run(schema_editor, postgresql, sqlite):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(postgresql, params=None)
    elif vendor == "sqlite":
        for statement in sqlite:
            schema_editor.execute(statement, params=None)
    else:
        raise NotImplementedError(f"no append-only triggers for the {vendor} backend")


def install(apps, schema_editor):
    _run(schema_editor, POSTGRESQL_INSTALL, SQLITE_INSTALL)


def uninstall(apps, schema_editor):
    _run(schema_editor, POSTGRESQL_UNINSTALL, SQLITE_UNINSTALL)


class Migration(migrations.Migration):
    dependencies = [("eventsourcing_app", "0001_initial")]

    operations = [migrations.RunPython(install, uninstall)]
