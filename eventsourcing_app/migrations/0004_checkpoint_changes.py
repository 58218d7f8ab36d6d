"""Create the append-only record of operator changes to projection checkpoints."""

import django.utils.timezone
from django.db import migrations, models

POSTGRESQL_INSTALL = """
CREATE FUNCTION checkpoint_changes_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Test suites empty tables with TRUNCATE between tests; they opt in per session.
    IF TG_OP = 'TRUNCATE' AND current_setting('eventsourcing.allow_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'checkpoint_changes is append-only: % refused', TG_OP
        USING HINT = 'The record of checkpoint changes is an audit trail; it never changes.';
END
$$;
CREATE TRIGGER checkpoint_changes_append_only BEFORE UPDATE OR DELETE ON checkpoint_changes
    FOR EACH ROW EXECUTE FUNCTION checkpoint_changes_refuse_change();
CREATE TRIGGER checkpoint_changes_no_truncate BEFORE TRUNCATE ON checkpoint_changes
    FOR EACH STATEMENT EXECUTE FUNCTION checkpoint_changes_refuse_change();
"""

POSTGRESQL_UNINSTALL = """
DROP TRIGGER IF EXISTS checkpoint_changes_no_truncate ON checkpoint_changes;
DROP TRIGGER IF EXISTS checkpoint_changes_append_only ON checkpoint_changes;
DROP FUNCTION IF EXISTS checkpoint_changes_refuse_change();
"""

SQLITE_INSTALL = [
    "CREATE TRIGGER checkpoint_changes_no_update BEFORE UPDATE ON checkpoint_changes BEGIN "
    "SELECT RAISE(ABORT, 'checkpoint_changes is append-only: UPDATE refused'); END",
    "CREATE TRIGGER checkpoint_changes_no_delete BEFORE DELETE ON checkpoint_changes BEGIN "
    "SELECT RAISE(ABORT, 'checkpoint_changes is append-only: DELETE refused'); END",
]

SQLITE_UNINSTALL = [
    "DROP TRIGGER IF EXISTS checkpoint_changes_no_update",
    "DROP TRIGGER IF EXISTS checkpoint_changes_no_delete",
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
    dependencies = [("eventsourcing_app", "0003_projection_checkpoints")]

    operations = [
        migrations.CreateModel(
            name="CheckpointChange",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("checkpoint", models.CharField(max_length=100)),
                ("kind", models.CharField(choices=[("rebuild", "rebuild")], max_length=20)),
                ("from_transaction", models.BigIntegerField()),
                ("from_id", models.BigIntegerField()),
                ("to_transaction", models.BigIntegerField()),
                ("to_id", models.BigIntegerField()),
                ("changed_by", models.CharField(max_length=200)),
                ("reason", models.TextField(blank=True, default="")),
                ("changed_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "db_table": "checkpoint_changes",
                "ordering": ["-changed_at", "-id"],
                "indexes": [
                    models.Index(
                        fields=["checkpoint", "changed_at"], name="checkpoint_changes_name_idx"
                    )
                ],
            },
        ),
        migrations.RunPython(install, uninstall),
    ]
