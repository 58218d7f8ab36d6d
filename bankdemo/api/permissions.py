"""Who may do what: tellers send commands and read; auditors read; nobody else gets in."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

TELLERS = "tellers"
AUDITORS = "auditors"
STAFF_GROUPS = (TELLERS, AUDITORS)  # read with the token (bankdemo/api/authentication.py)


def in_group(user, *groups: str) -> bool:
    if not user or not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    known = getattr(user, "staff_groups", None)  # read with the token, in this request
    if known is not None and set(groups) <= set(STAFF_GROUPS):
        return not known.isdisjoint(groups)
    return user.groups.filter(name__in=groups).exists()


class BankStaff(BasePermission):
    """Reads for tellers and auditors, commands for tellers only (401 when anonymous)."""

    message = "tellers may send commands; auditors may only read"

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return in_group(request.user, TELLERS, AUDITORS)
        return in_group(request.user, TELLERS)
