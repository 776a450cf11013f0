"""Planned outages are entered by the utility's staff in the admin (scoped like the grid)."""

from django.contrib import admin

from accounts.admin_base import ScopedModelAdmin

from .models import PlannedOutage


@admin.register(PlannedOutage)
class PlannedOutageAdmin(ScopedModelAdmin):
    list_display = ("node", "starts_at", "ends_at", "reason", "organisation")
    search_fields = ("reason", "node__code", "node__name")
    raw_id_fields = ("node",)
