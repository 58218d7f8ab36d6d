"""The staff groups: tellers (commands and reads in the API) and auditors (reads, and a
read-only audit UI in the admin). Kept in place after every migrate, and after the test
runner empties the tables."""

from __future__ import annotations

VIEWABLE = {
    "eventsourcing_app": ["event", "snapshot", "projectioncheckpoint", "checkpointchange"],
    "bankdemo": ["accountbalance", "ledgerentry", "dailytotal", "transferstatus"],
}


def ensure_staff_groups(sender=None, using: str = "default", **kwargs) -> None:
    """Create the groups and give auditors the view permissions (a post_migrate receiver)."""
    from django.contrib.auth.models import Group, Permission

    Group.objects.using(using).get_or_create(name="tellers")
    auditors, _ = Group.objects.using(using).get_or_create(name="auditors")
    for app_label, models in VIEWABLE.items():
        auditors.permissions.add(
            *Permission.objects.using(using).filter(
                content_type__app_label=app_label, codename__in=[f"view_{m}" for m in models]
            )
        )
