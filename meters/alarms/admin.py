"""Admin pages of alarms, scoped like every other door; alarms change only through actions."""

from django.contrib import admin, messages

from accounts.admin_base import ReadOnlyScopedAdmin, ScopedModelAdmin

from . import actions as alarm_actions
from .models import Alarm, AlarmRule, AlarmSubscription, NotificationDelivery


@admin.register(AlarmRule)
class AlarmRuleAdmin(ScopedModelAdmin):
    list_display = (
        "name",
        "organisation",
        "severity",
        "subtree",
        "grid_node",
        "meter_model",
        "active",
    )
    list_filter = ("severity", "active")
    search_fields = ("name",)
    raw_id_fields = ("grid_node",)


@admin.register(Alarm)
class AlarmAdmin(ReadOnlyScopedAdmin):
    list_display = (
        "meter",
        "line",
        "kind",
        "severity",
        "state",
        "count",
        "last_event_at",
        "organisation",
    )
    list_filter = ("state", "severity", "kind")
    search_fields = ("meter__serial",)
    actions = ["acknowledge", "clear"]

    def _apply(self, request, queryset, verb, done):
        changed = 0
        for alarm in queryset.restrict(request.user, "change"):
            try:
                verb(alarm, acting_user=request.user, comment="from the admin")
                changed += 1
            except (alarm_actions.AlarmStateError, alarm_actions.OutOfScope):
                continue
        messages.info(request, f"{changed} alarm(s) {done}.")

    @admin.action(description="Acknowledge selected alarms", permissions=["view"])
    def acknowledge(self, request, queryset):
        self._apply(request, queryset, alarm_actions.acknowledge_alarm, "acknowledged")

    @admin.action(description="Clear selected alarms", permissions=["view"])
    def clear(self, request, queryset):
        self._apply(request, queryset, alarm_actions.clear_alarm, "cleared")


@admin.register(AlarmSubscription)
class AlarmSubscriptionAdmin(ScopedModelAdmin):
    """Each user's own subscriptions (the queryset says so); a new one is the user's."""

    list_display = ("user", "organisation", "min_severity", "by_email", "by_sms", "active")
    list_filter = ("by_email", "by_sms", "active")
    raw_id_fields = ("grid_node",)
    exclude = ("user",)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.user = request.user
        super().save_model(request, obj, form, change)


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(ReadOnlyScopedAdmin):
    list_display = ("created_at", "channel", "recipient", "status", "attempts", "alarm")
    list_filter = ("channel", "status")
    search_fields = ("recipient",)
