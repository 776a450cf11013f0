"""Dashboard pages of the grid and the meter registry."""

from django.urls import path

from . import exports, views

app_name = "meters"
urlpatterns = [
    path("grid/", views.GridTreeView.as_view(), name="grid"),
    path("meters/", views.MeterListView.as_view(), name="meter-list"),
    path("meters/export.<str:fmt>", exports.export_meters, name="meter-export"),
    path("meters/import/", exports.MeterImportView.as_view(), name="meter-import"),
    path("meters/<str:serial>/", views.MeterDetailView.as_view(), name="meter-detail"),
]
