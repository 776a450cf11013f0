"""Pages of the loadcontrol app."""

from django.urls import path

from . import views

app_name = "loadcontrol"
urlpatterns = [
    path("commands/", views.CommandListView.as_view(), name="command-list"),
    path("meters/<str:serial>/command/", views.command_meter, name="command-meter"),
    path("commands/bulk/", views.BulkListView.as_view(), name="bulk-list"),
    path("commands/bulk/new/", views.bulk_new, name="bulk-new"),
    path("commands/bulk/<int:pk>/", views.BulkDetailView.as_view(), name="bulk-detail"),
    path("commands/bulk/<int:pk>/decide/", views.bulk_decide, name="bulk-decide"),
]
