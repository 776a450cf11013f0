"""Pages of the reports app: the data query and its exports."""

from django.urls import path

from . import views

app_name = "reports"
urlpatterns = [
    path("query/", views.DataQueryView.as_view(), name="query"),
    path("query/graph.json", views.QueryGraphView.as_view(), name="query-graph"),
    path("query/export.<str:fmt>", views.ExportView.as_view(), name="query-export"),
    path("exports/<int:pk>/", views.ExportJobView.as_view(), name="export-job"),
    path("exports/<int:pk>/status.json", views.ExportJobStatusView.as_view(), name="export-status"),
    path(
        "exports/<int:pk>/download/",
        views.ExportJobDownloadView.as_view(),
        name="export-download",
    ),
]
