"""Create the record of rebuilds started from the admin and run in the background (who, why,
how far), with at most one unfinished run per projection."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("eventsourcing_app", "0006_evidence_exports")]

    operations = [
        migrations.CreateModel(
            name="RebuildRun",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("projection", models.CharField(max_length=100)),
                ("started_by", models.CharField(max_length=200)),
                ("reason", models.TextField(blank=True, default="")),
                ("started_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("events_total", models.BigIntegerField(blank=True, null=True)),
                ("events_read", models.BigIntegerField(default=0)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("error", models.TextField(blank=True, default="")),
            ],
            options={
                "db_table": "rebuild_runs",
                "ordering": ["-started_at", "-id"],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("finished_at__isnull", True)),
                        fields=("projection",),
                        name="rebuild_runs_one_running",
                    )
                ],
            },
        ),
    ]
