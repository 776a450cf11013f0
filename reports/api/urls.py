"""Routes of the reports API (below /api/). The vending reports keep their address."""

from django.urls import path

from . import views

urlpatterns = [
    path("vending/reports/<slug:slug>/", views.ReportView.as_view(), name="vending-report"),
    path("reports/billing/", views.BillingView.as_view(), name="reports-billing"),
]
