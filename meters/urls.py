"""Dashboard pages of the grid and the meter registry."""

from django.urls import path  # noqa: F401

app_name = "meters"
urlpatterns: list = []
