"""Token authentication that reads the token, its user and the user's staff groups at once.

DRF's `TokenAuthentication` reads the token with its user through the ORM; the permission
check then asks the database again whether the user is a teller or an auditor. Here one
statement, written once, answers both (`staff_groups` on the user), with the same checks in
the same order: an unknown token or an inactive user is refused as DRF refuses them. (Through
the ORM, the same query with two `Exists` annotations cost more to build than the second
round trip it saves.)
"""

from __future__ import annotations

import functools

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import router
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from bankdemo.api.permissions import STAFF_GROUPS
from eventsourcing_app.backends import statements


@functools.cache
def _statement() -> tuple[str, list, list]:
    """The SELECT, and the user's and the token's fields in its column order."""
    token_model = authentication.TokenAuthentication().get_model()
    user_model = get_user_model()
    memberships = user_model.groups.through._meta
    group_table = Group._meta.db_table
    user_fields = list(user_model._meta.concrete_fields)
    token_fields = list(token_model._meta.concrete_fields)
    user_pk, group_pk = user_model._meta.pk.column, Group._meta.pk.column
    member, group = (memberships.get_field(name).column for name in ("user", "group"))
    token_user, token_key = (token_model._meta.get_field(name).column for name in ("user", "key"))
    flags = ", ".join(
        f"EXISTS (SELECT 1 FROM {memberships.db_table} m JOIN {group_table} g "
        f"ON g.{group_pk} = m.{group} WHERE m.{member} = u.{user_pk} AND g.name = %s)"
        for _ in STAFF_GROUPS
    )
    columns = [f"u.{field.column}" for field in user_fields] + [
        f"t.{field.column}" for field in token_fields
    ]
    sql = (
        f"SELECT {', '.join(columns)}, {flags} "
        f"FROM {token_model._meta.db_table} t JOIN {user_model._meta.db_table} u "
        f"ON u.{user_pk} = t.{token_user} WHERE t.{token_key} = %s"
    )
    return sql, user_fields, token_fields


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key):
        token_model, user_model = self.get_model(), get_user_model()
        sql, user_fields, token_fields = _statement()
        using = router.db_for_read(token_model)
        found = statements.fetch(using, sql, [*STAFF_GROUPS, key])
        if not found:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        row = found[0]
        users, tokens = len(user_fields), len(token_fields)
        user = statements.instance(user_model, user_fields, row[:users], using)
        token = statements.instance(token_model, token_fields, row[users : users + tokens], using)
        token.user = user
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        user.staff_groups = frozenset(
            name for name, member in zip(STAFF_GROUPS, row[users + tokens :], strict=True) if member
        )
        return user, token
