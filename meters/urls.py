"""Dashboard pages of the grid and the meter registry."""

from django.urls import path

from . import concentrator_views, detail_views, exports, map_views, views

app_name = "meters"
urlpatterns = [
    path("grid/", views.GridTreeView.as_view(), name="grid"),
    path("meters/", views.MeterListView.as_view(), name="meter-list"),
    path("meters/export.<str:fmt>", exports.export_meters, name="meter-export"),
    path("meters/import/", exports.MeterImportView.as_view(), name="meter-import"),
    path("meters/<str:serial>/", detail_views.MeterDetailView.as_view(), name="meter-detail"),
    # Dashboard: map, grid branches (the operator dashboard issue)
    path("map/", map_views.MeterMapView.as_view(), name="map"),
    path("map/data/", map_views.MapDataView.as_view(), name="map-data"),
    path("grid/nodes/<int:pk>/children/", views.GridChildrenView.as_view(), name="grid-children"),
    # Data concentrators and shared lines (issue 14)
    path(
        "concentrators/",
        concentrator_views.ConcentratorListView.as_view(),
        name="concentrator-list",
    ),
    path(
        "concentrators/<int:pk>/",
        concentrator_views.ConcentratorDetailView.as_view(),
        name="concentrator-detail",
    ),
    path("lines/", concentrator_views.LineListView.as_view(), name="lines"),
]
from .alarms.urls import urlpatterns as alarm_urlpatterns  # noqa: E402

urlpatterns += alarm_urlpatterns  # alarms and outages (meters/alarms/urls.py)
