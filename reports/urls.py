"""Pages of the reports app: the data query and its exports, the collection success report and
the vending reports (which keep their address under /vending/). Mounted at the site's root."""

from django.urls import path

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
    path("vending/reports/", views.VendingReportsView.as_view(), name="vending"),
]
