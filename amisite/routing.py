"""Websocket routes of every app, in one list."""

from django.urls import path

from collection.consumers import RunProgressConsumer, SystemStatusConsumer
from loadcontrol.consumers import BulkProgressConsumer
from meters.alarms.consumers import AlarmConsumer

websocket_urlpatterns = [
    path("ws/status/", SystemStatusConsumer.as_asgi()),
    path("ws/runs/<int:run_id>/", RunProgressConsumer.as_asgi()),
    path("ws/alarms/", AlarmConsumer.as_asgi()),
    path("ws/bulk-commands/<int:bulk_id>/", BulkProgressConsumer.as_asgi()),
]
