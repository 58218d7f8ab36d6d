"""Index the events by the username in their metadata, for the event list's user filter."""

from django.db import migrations, models

import eventsourcing_app.models


class Migration(migrations.Migration):
    dependencies = [("eventsourcing_app", "0008_rebuild_heartbeat")]

    operations = [
        migrations.AddIndex(
            model_name="event",
            index=models.Index(eventsourcing_app.models.Username(), name="events_username_idx"),
        ),
    ]
