"""Admin pages of the accounts app."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .admin_base import ScopedModelAdmin
from .models import ActivityLog, Organisation, User


@admin.register(User)
class UserAdmin(ScopedModelAdmin, DjangoUserAdmin):
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Organisation", {"fields": ("organisation", "phone")}),
    )
    list_display = ("username", "email", "organisation", "is_active", "is_staff")
    list_filter = ("is_active", "is_staff", "groups")


@admin.register(Organisation)
class OrganisationAdmin(ScopedModelAdmin):
    list_display = ("name", "code", "parent")
    search_fields = ("name", "code")


@admin.register(ActivityLog)
class ActivityLogAdmin(admin.ModelAdmin):
    """Read-only for everybody, superusers included: the log is evidence."""

    list_display = (
        "at",
        "username",
        "action",
        "object_type",
        "object_repr",
        "outcome",
        "ip_address",
    )
    list_filter = ("action", "outcome")
    search_fields = ("username", "object_repr", "detail")

    def get_queryset(self, request):
        return super().get_queryset(request).restrict(request.user, "view")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
