"""Create the ledger's tables (leaves, subtree nodes, signed digests), append-only by trigger."""

from django.db import migrations, models

TABLES = ("ledger_leaves", "ledger_nodes", "ledger_digests")

POSTGRESQL_FUNCTION = """
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Test suites empty tables with TRUNCATE between tests; they opt in per session.
    IF TG_OP = 'TRUNCATE' AND current_setting('eventsourcing.allow_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING HINT = 'The ledger is extended by its sealer and never rewritten.';
END
$$;
"""
POSTGRESQL_TRIGGERS = """
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
"""
SQLITE_TRIGGERS = [
    "CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} BEGIN "
    "SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END",
    "CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} BEGIN "
    "SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END",
]


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_FUNCTION, params=None)
        for table in TABLES:
            schema_editor.execute(POSTGRESQL_TRIGGERS.format(table=table), params=None)
    elif vendor == "sqlite":
        for table in TABLES:
            for statement in SQLITE_TRIGGERS:
                schema_editor.execute(statement.format(table=table), params=None)
    else:
        raise NotImplementedError(f"no append-only triggers for the {vendor} backend")


def uninstall(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in TABLES:
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        else:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    if vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS ledger_refuse_change()")


class Migration(migrations.Migration):
    dependencies = [("eventsourcing_app", "0004_checkpoint_changes")]

    operations = [
        migrations.CreateModel(
            name="LedgerLeaf",
            fields=[
                ("leaf_index", models.BigIntegerField(primary_key=True, serialize=False)),
                ("event_id", models.BigIntegerField(unique=True)),
                ("transaction_id", models.BigIntegerField()),
                ("aggregate_id", models.UUIDField()),
                ("version", models.PositiveIntegerField()),
                ("hash", models.BinaryField(max_length=32)),
            ],
            options={
                "db_table": "ledger_leaves",
                "indexes": [
                    models.Index(
                        fields=["aggregate_id", "version"], name="ledger_leaves_stream_idx"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="LedgerNode",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "level",
                        "node_index",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("level", models.SmallIntegerField()),
                ("node_index", models.BigIntegerField()),
                ("hash", models.BinaryField(max_length=32)),
            ],
            options={"db_table": "ledger_nodes"},
        ),
        migrations.CreateModel(
            name="LedgerDigest",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("tree_size", models.BigIntegerField()),
                ("root_hash", models.CharField(max_length=64)),
                ("last_position", models.CharField(max_length=41)),
                ("algorithm", models.CharField(max_length=30)),
                ("sealed_at", models.CharField(max_length=40)),
                ("key_id", models.CharField(max_length=64)),
                ("signature", models.CharField(max_length=100)),
            ],
            options={
                "db_table": "ledger_digests",
                "indexes": [models.Index(fields=["tree_size"], name="ledger_digests_size_idx")],
            },
        ),
        migrations.RunPython(install, uninstall),
    ]
