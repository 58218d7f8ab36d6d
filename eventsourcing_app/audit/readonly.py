"""The base of every audit-trail admin: nobody adds, changes or deletes, superusers included."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Nobody adds, changes or deletes here, superusers included."""

    actions = None

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
