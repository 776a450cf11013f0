"""Pages of the reports app: the data query and its exports, the collection success report and
the vending reports (which keep their address under /vending/); the report definitions, their
runs and schedules. Mounted at the site's root."""

from django.urls import path

from . import definition_views as defs
from . import pattern_views, views

app_name = "reports"
urlpatterns = [
    path("reports/query/", views.DataQueryView.as_view(), name="query"),
    path("reports/query/graph.json", views.QueryGraphView.as_view(), name="query-graph"),
    path("reports/query/export.<str:fmt>", views.ExportView.as_view(), name="query-export"),
    path("reports/exports/<int:pk>/", views.ExportJobView.as_view(), name="export-job"),
    path(
        "reports/exports/<int:pk>/status.json",
        views.ExportJobStatusView.as_view(),
        name="export-status",
    ),
    path(
        "reports/exports/<int:pk>/download/",
        views.ExportJobDownloadView.as_view(),
        name="export-download",
    ),
    path("reports/collection/", views.CollectionReportView.as_view(), name="collection"),
    path("reports/billing/", views.BillingReportView.as_view(), name="billing"),
    path("reports/energy-balance/", views.EnergyBalanceView.as_view(), name="balance"),
    path(
        "reports/energy-balance/<int:pk>/",
        views.EnergyBalanceNodeView.as_view(),
        name="balance-node",
    ),
    path("reports/load/", views.LoadReportView.as_view(), name="load"),
    path("reports/load/<int:pk>/", views.LoadNodeView.as_view(), name="load-node"),
    path("reports/tamper/", views.TamperReportView.as_view(), name="tamper"),
    path("reports/patterns/", pattern_views.PatternReportView.as_view(), name="patterns"),
    path("reports/definitions/", defs.DefinitionListView.as_view(), name="definitions"),
    path("reports/definitions/new/", defs.DefinitionEditView.as_view(), name="definition-new"),
    path(
        "reports/definitions/built-in/", defs.DefinitionSeedView.as_view(), name="definition-seed"
    ),
    path("reports/definitions/<int:pk>/", defs.DefinitionDetailView.as_view(), name="definition"),
    path(
        "reports/definitions/<int:pk>/edit/",
        defs.DefinitionEditView.as_view(),
        name="definition-edit",
    ),
    path(
        "reports/definitions/<int:pk>/delete/",
        defs.DefinitionDeleteView.as_view(),
        name="definition-delete",
    ),
    path(
        "reports/definitions/<int:pk>/show/",
        defs.DefinitionShowView.as_view(),
        name="definition-show",
    ),
    path(
        "reports/definitions/<int:pk>/run/", defs.DefinitionRunView.as_view(), name="definition-run"
    ),
    path(
        "reports/definitions/<int:pk>/schedules/new/",
        defs.ScheduleEditView.as_view(),
        name="schedule-new",
    ),
    path("reports/versions/<int:pk>/", defs.VersionView.as_view(), name="version"),
    path("reports/runs/<int:pk>/", defs.RunView.as_view(), name="run"),
    path("reports/runs/<int:pk>/status.json", defs.RunStatusView.as_view(), name="run-status"),
    path("reports/runs/<int:pk>/download/", defs.RunDownloadView.as_view(), name="run-download"),
    path("reports/schedules/<int:pk>/", defs.ScheduleEditView.as_view(), name="schedule"),
    path(
        "reports/schedules/<int:pk>/delete/",
        defs.ScheduleDeleteView.as_view(),
        name="schedule-delete",
    ),
    path("reports/events/cim.xml", pattern_views.EndDeviceEventsView.as_view(), name="events-cim"),
    path("vending/reports/", views.VendingReportsView.as_view(), name="vending"),
]
