"""Dashboard routes of alarms (included from meters/urls.py)."""

from django.urls import path

from . import views

urlpatterns = [
    path("alarms/", views.AlarmListView.as_view(), name="alarms"),
    path("alarms/outages/", views.OutageView.as_view(), name="outages"),
    path(
        "alarms/<int:pk>/<str:verb>/",
        views.AlarmTransitionView.as_view(),
        name="alarm-transition",
    ),
]
