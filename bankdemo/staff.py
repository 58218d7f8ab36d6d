"""The staff groups: tellers (commands and reads in the API), auditors (reads, and a
read-only audit UI in the admin) and privacy officers (the auditors' pages, and forgetting a
data subject). Kept in place after every migrate, and after the test
runner empties the tables. And the admin's login form, which tells a teller why they are
refused."""

from __future__ import annotations

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

PRIVACY_OFFICERS = "privacy officers"
VIEWABLE = {
    "eventsourcing_app": [
        "event",
        "snapshot",
        "projectioncheckpoint",
        "checkpointchange",
        "evidenceexport",
        "personaldatakey",
    ],
    "bankdemo": ["accountbalance", "ledgerentry", "dailytotal", "transferstatus"],
}


def ensure_staff_groups(sender=None, using: str = "default", **kwargs) -> None:
    """Create the groups and give auditors the view permissions (a post_migrate receiver)."""
    from django.contrib.auth.models import Group, Permission

    Group.objects.using(using).get_or_create(name="tellers")
    auditors, _ = Group.objects.using(using).get_or_create(name="auditors")
    officers, _ = Group.objects.using(using).get_or_create(name=PRIVACY_OFFICERS)
    for app_label, models in VIEWABLE.items():
        viewing = Permission.objects.using(using).filter(
            content_type__app_label=app_label, codename__in=[f"view_{m}" for m in models]
        )
        auditors.permissions.add(*viewing)
        officers.permissions.add(*viewing)
    officers.permissions.add(
        *Permission.objects.using(using).filter(
            content_type__app_label="eventsourcing_app", codename="forget_subject"
        )
    )


class StaffLoginForm(AdminAuthenticationForm):
    """The admin's login form. A user whose password was right but who is not staff (a
    teller) is told that the account has no admin access, instead of being asked for the
    correct username and password; wrong credentials keep Django's message. django-axes still
    counts and locks out failed logins: a right password is not a failure."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "no_admin_access": (
            "The account “%(account)s” has no admin access: these pages are for auditors and "
            "administrators. Tellers work through the API at /api/."
        ),
    }

    def confirm_login_allowed(self, user):
        if user.is_active and not user.is_staff:
            raise ValidationError(
                self.error_messages["no_admin_access"],
                code="no_admin_access",
                params={"account": user.get_username()},
            )
        super().confirm_login_allowed(user)
