"""Pages of the loadcontrol app."""

from django.urls import path

from . import views

app_name = "loadcontrol"
urlpatterns = [
    path("commands/", views.CommandListView.as_view(), name="command-list"),
    path("meters/<str:serial>/command/", views.command_meter, name="command-meter"),
]
