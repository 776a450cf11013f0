"""Dashboard routes of alarms (included from meters/urls.py)."""

from django.urls import path

from . import alarm_views

urlpatterns = [
    path("alarms/", alarm_views.AlarmListView.as_view(), name="alarms"),
    path("alarms/outages/", alarm_views.OutageView.as_view(), name="outages"),
    path(
        "alarms/<int:pk>/<str:verb>/",
        alarm_views.AlarmTransitionView.as_view(),
        name="alarm-transition",
    ),
]
