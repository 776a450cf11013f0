"""Pages of the reports app: the data query and its exports, the collection success report and
the vending reports (which keep their address under /vending/); the report definitions, their
runs and schedules. Mounted at the site's root."""

from django.urls import path

from . import definition_views as defs
from . import exchange_views, pattern_views, views


def on_object(prefix: str, *pages) -> list:
    """The pages of one object under `<prefix>/<int:pk>/`: (suffix, view class, name)."""
    return [
        path(f"{prefix}/<int:pk>/{suffix}", view.as_view(), name=name)
        for suffix, view, name in pages
    ]


app_name = "reports"
urlpatterns = [
    path("reports/query/", views.DataQueryView.as_view(), name="query"),
    path("reports/query/graph.json", views.QueryGraphView.as_view(), name="query-graph"),
    path("reports/query/export.<str:fmt>", views.ExportView.as_view(), name="query-export"),
    *on_object(
        "reports/exports",
        ("", views.ExportJobView, "export-job"),
        ("status.json", views.ExportJobStatusView, "export-status"),
        ("download/", views.ExportJobDownloadView, "export-download"),
    ),
    path("reports/collection/", views.CollectionReportView.as_view(), name="collection"),
    path("reports/billing/", views.BillingReportView.as_view(), name="billing"),
    path("reports/energy-balance/", views.EnergyBalanceView.as_view(), name="balance"),
    *on_object("reports/energy-balance", ("", views.EnergyBalanceNodeView, "balance-node")),
    path("reports/load/", views.LoadReportView.as_view(), name="load"),
    *on_object("reports/load", ("", views.LoadNodeView, "load-node")),
    path("reports/tamper/", views.TamperReportView.as_view(), name="tamper"),
    path("reports/patterns/", pattern_views.PatternReportView.as_view(), name="patterns"),
    path("reports/definitions/", defs.DefinitionListView.as_view(), name="definitions"),
    path("reports/definitions/new/", defs.DefinitionEditView.as_view(), name="definition-new"),
    path(
        "reports/definitions/built-in/", defs.DefinitionSeedView.as_view(), name="definition-seed"
    ),
    *on_object(
        "reports/definitions",
        ("", defs.DefinitionDetailView, "definition"),
        ("edit/", defs.DefinitionEditView, "definition-edit"),
        ("delete/", defs.DefinitionDeleteView, "definition-delete"),
        ("show/", defs.DefinitionShowView, "definition-show"),
        ("run/", defs.DefinitionRunView, "definition-run"),
        ("schedules/new/", defs.ScheduleEditView, "schedule-new"),
    ),
    *on_object("reports/versions", ("", defs.VersionView, "version")),
    *on_object(
        "reports/runs",
        ("", defs.RunView, "run"),
        ("status.json", defs.RunStatusView, "run-status"),
        ("download/", defs.RunDownloadView, "run-download"),
    ),
    *on_object(
        "reports/schedules",
        ("", defs.ScheduleEditView, "schedule"),
        ("delete/", defs.ScheduleDeleteView, "schedule-delete"),
    ),
    path("reports/events/cim.xml", pattern_views.EndDeviceEventsView.as_view(), name="events-cim"),
    path("reports/exchange/", exchange_views.ExchangeLogView.as_view(), name="exchange"),
    path(
        "reports/exchange/<int:pk>/",
        exchange_views.ExchangeLogDetailView.as_view(),
        name="exchange-row",
    ),
    path("vending/reports/", views.VendingReportsView.as_view(), name="vending"),
]
