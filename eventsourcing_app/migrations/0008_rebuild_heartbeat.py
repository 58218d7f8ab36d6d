"""Record the heartbeat of a background rebuild, so that a run whose process died can be told
from one that still runs."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("eventsourcing_app", "0007_rebuild_runs")]

    operations = [
        migrations.AddField(
            model_name="rebuildrun",
            name="heartbeat_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
