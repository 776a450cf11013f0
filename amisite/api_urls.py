"""The REST API: every app's router under /api/."""

from django.urls import include, path

urlpatterns = [
    path("", include("meters.api.urls")),
]
