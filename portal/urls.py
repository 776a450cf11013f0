"""The customer portal, mounted at /portal/ by the root URLs (by name: nothing imports portal)."""

from django.urls import path

from . import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("usage/", views.usage, name="usage"),
    path("usage.csv", views.usage_csv, name="usage-csv"),
    path("purchases/", views.purchases, name="purchases"),
    path("purchases/<uuid:reference>/", views.purchase, name="purchase"),
    path("purchases/<uuid:reference>/receipt.pdf", views.receipt_pdf, name="receipt-pdf"),
]
