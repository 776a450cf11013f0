"""Websocket routes of every app, in one list."""

from django.urls import path

from collection.consumers import SystemStatusConsumer

websocket_urlpatterns = [
    path("ws/status/", SystemStatusConsumer.as_asgi()),
]
