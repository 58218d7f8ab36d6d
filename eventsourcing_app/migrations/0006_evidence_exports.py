"""Create the record of evidence exports (who exported which events, and the file's hash),
append-only by trigger like the log and the ledger."""

import django.utils.timezone
from django.db import migrations, models

TABLE = "evidence_exports"

POSTGRESQL_FUNCTION = """
CREATE FUNCTION evidence_exports_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Test suites empty tables with TRUNCATE between tests; they opt in per session.
    IF TG_OP = 'TRUNCATE' AND current_setting('eventsourcing.allow_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING HINT = 'An evidence export is recorded once, when its file is complete.';
END
$$;
"""
POSTGRESQL_TRIGGERS = f"""
CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION evidence_exports_refuse_change();
CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION evidence_exports_refuse_change();
"""
SQLITE_TRIGGERS = [
    f"CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE} BEGIN "
    f"SELECT RAISE(ABORT, '{TABLE} is append-only: UPDATE refused'); END",
    f"CREATE TRIGGER {TABLE}_no_delete BEFORE DELETE ON {TABLE} BEGIN "
    f"SELECT RAISE(ABORT, '{TABLE} is append-only: DELETE refused'); END",
]


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_FUNCTION, params=None)
        schema_editor.execute(POSTGRESQL_TRIGGERS, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_TRIGGERS:
            schema_editor.execute(statement, params=None)
    else:
        raise NotImplementedError(f"no append-only triggers for the {vendor} backend")


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}")
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}")
        schema_editor.execute("DROP FUNCTION IF EXISTS evidence_exports_refuse_change()")
    else:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_update")
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_delete")


class Migration(migrations.Migration):
    dependencies = [("eventsourcing_app", "0005_ledger")]

    operations = [
        migrations.CreateModel(
            name="EvidenceExport",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("export_id", models.UUIDField(unique=True)),
                ("exported_by", models.CharField(max_length=200)),
                (
                    "format",
                    models.CharField(
                        choices=[("csv", "CSV"), ("jsonl", "JSON Lines")], max_length=10
                    ),
                ),
                ("query_string", models.TextField(blank=True, default="")),
                ("filters", models.JSONField(default=dict)),
                ("as_of_transaction", models.BigIntegerField()),
                ("as_of_id", models.BigIntegerField()),
                ("last_transaction", models.BigIntegerField(default=0)),
                ("last_id", models.BigIntegerField(default=0)),
                ("row_count", models.BigIntegerField()),
                ("sha256", models.CharField(max_length=64)),
                ("started_at", models.DateTimeField()),
                ("completed_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={"db_table": "evidence_exports", "ordering": ["-completed_at", "-id"]},
        ),
        migrations.RunPython(install, uninstall),
    ]
