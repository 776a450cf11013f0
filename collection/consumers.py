"""Websocket consumers of the collection app: live system status for signed-in staff."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils import timezone

STATUS_GROUP = "system-status"


class SystemStatusConsumer(AsyncJsonWebsocketConsumer):
    """Sends a status snapshot on connect, then every update published to the status group."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        await self.channel_layer.group_add(STATUS_GROUP, self.channel_name)
        await self.accept()
        await self.send_json({"type": "status", "status": await database_sync_to_async(snapshot)()})

    async def disconnect(self, code):
        await self.channel_layer.group_discard(STATUS_GROUP, self.channel_name)

    async def status_update(self, event):
        await self.send_json({"type": "status", "status": event["status"]})


def snapshot() -> dict:
    """What the status page shows; grows as collection, alarms and jobs land."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"server_time": timezone.now().isoformat(), "database": connection.vendor}
