"""Admin pages of the accounts app."""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from . import actions, privileges
from .admin_base import ScopedModelAdmin
from .models import ActivityLog, Organisation, User


@admin.register(User)
class UserAdmin(ScopedModelAdmin, DjangoUserAdmin):
    """Users in scope; who may change whom is `accounts/privileges.py`, applied by restrict()."""

    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Organisation", {"fields": ("organisation", "phone")}),
    )
    list_display = ("username", "email", "organisation", "is_active", "is_staff")
    list_filter = ("is_active", "is_staff", "groups")

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        # Fields only a superuser may set are not even shown (a posted value is ignored).
        hidden = set(privileges.SUPERUSER_ONLY_FORM_FIELDS)
        return [
            (name, {**opts, "fields": [f for f in opts["fields"] if f not in hidden]})
            for name, opts in fieldsets
        ]

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "groups":
            kwargs["queryset"] = privileges.grantable_roles(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(Organisation)
class OrganisationAdmin(ScopedModelAdmin):
    list_display = ("name", "code", "parent")
    search_fields = ("name", "code")

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        try:
            actions.create_organisation(obj, acting_user=request.user)  # default rules too
        except actions.OutOfScope as exc:
            messages.error(request, str(exc))
            raise


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
