"""Pages of the loadcontrol app."""

from django.urls import path

from . import config_views, views

app_name = "loadcontrol"
urlpatterns = [
    path("commands/", views.CommandListView.as_view(), name="command-list"),
    path("meters/<str:serial>/command/", views.command_meter, name="command-meter"),
    path("commands/bulk/", views.BulkListView.as_view(), name="bulk-list"),
    path("commands/bulk/new/", views.bulk_new, name="bulk-new"),
    path("commands/bulk/<int:pk>/", views.BulkDetailView.as_view(), name="bulk-detail"),
    path("commands/bulk/<int:pk>/decide/", views.bulk_decide, name="bulk-decide"),
    path("load-schedules/", views.ScheduleListView.as_view(), name="schedule-list"),
    path("load-schedules/new/", views.schedule_new, name="schedule-new"),
    path("load-schedules/<int:pk>/", views.ScheduleDetailView.as_view(), name="schedule-detail"),
    path("load-schedules/<int:pk>/edit/", views.schedule_edit, name="schedule-edit"),
    path("load-schedules/<int:pk>/decide/", views.schedule_decide, name="schedule-decide"),
    path("configuration/", config_views.drift_report, name="configuration"),
    path(
        "configuration/models/<int:pk>/",
        config_views.model_configuration,
        name="configuration-model",
    ),
    path(
        "meters/<str:serial>/configuration/",
        config_views.meter_configuration,
        name="configuration-meter",
    ),
]
