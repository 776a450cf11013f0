"""Admin pages of the collection app, scoped like every other door."""

from django.contrib import admin

from accounts import audit
from accounts.admin_base import ReadOnlyScopedAdmin, ScopedModelAdmin

from . import actions
from .models import JobRun, MeterReadResult, ReadJob


@admin.register(ReadJob)
class ReadJobAdmin(ScopedModelAdmin):
    list_display = ("name", "organisation", "crontab", "enabled")
    list_filter = ("enabled",)
    search_fields = ("name",)
    filter_horizontal = ("meters",)
    raw_id_fields = ("grid_node",)

    def save_model(self, request, obj, form, change):
        before = audit.snapshot(ReadJob.objects.get(pk=obj.pk)) if change and obj.pk else None
        actions.save_read_job(obj, acting_user=request.user, before=before)

    def delete_model(self, request, obj):
        actions.delete_read_job(obj, acting_user=request.user)


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyScopedAdmin):
    list_display = (
        "pk",
        "job",
        "kind",
        "status",
        "total",
        "done",
        "succeeded",
        "failed",
        "created_at",
    )
    list_filter = ("status", "kind")


@admin.register(MeterReadResult)
class MeterReadResultAdmin(ReadOnlyScopedAdmin):
    list_display = ("run", "meter", "status", "attempts", "error_kind", "values_stored")
    list_filter = ("status", "error_kind")
    search_fields = ("meter__serial",)
