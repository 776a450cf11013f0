"""Routes of the reports API (below /api/). The vending reports keep their address; the
report engine's definitions, versions, runs, schedules and deliveries and the file
exchange log are viewsets."""

from django.urls import path

from amisite.routers import ApiRouter

from . import engine, exchange, pattern_views, views

router = ApiRouter()
router.register("report-definitions", engine.ReportDefinitionViewSet)
router.register("report-versions", engine.ReportVersionViewSet)
router.register("report-runs", engine.ReportRunViewSet)
router.register("report-schedules", engine.ReportScheduleViewSet)
router.register("report-deliveries", engine.ReportDeliveryViewSet)
router.register("exchange-logs", exchange.ExchangeLogViewSet)

urlpatterns = [
    path("vending/reports/<slug:slug>/", views.ReportView.as_view(), name="vending-report"),
    path("reports/billing/", views.BillingView.as_view(), name="reports-billing"),
    path(
        "reports/billing/by-meter/",
        views.BillingByMeterView.as_view(),
        name="reports-billing-by-meter",
    ),
    path("reports/energy-balance/", views.BalanceListView.as_view(), name="reports-balance"),
    path("reports/load/", views.LoadListView.as_view(), name="reports-load"),
    path("reports/tamper/", views.TamperView.as_view(), name="reports-tamper"),
    path("reports/patterns/", pattern_views.PatternView.as_view(), name="reports-patterns"),
    path("reports/load/<int:pk>/", views.LoadNodeView.as_view(), name="reports-load-node"),
    path(
        "reports/energy-balance/<int:pk>/",
        views.BalanceNodeView.as_view(),
        name="reports-balance-node",
    ),
]
urlpatterns += router.urls
