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


class RunProgressConsumer(AsyncJsonWebsocketConsumer):
    """Live progress of one run, for users who may see that run (others: refused)."""

    async def connect(self):
        from .progress import run_group

        user = self.scope.get("user")
        run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        snapshot = await database_sync_to_async(_visible_run_snapshot)(user, run_id)
        if snapshot is None:
            await self.close(code=4404)
            return
        self.group = run_group(run_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "run", "run": snapshot})

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def run_progress(self, event):
        await self.send_json({"type": "run", "run": event["run"]})


def _visible_run_snapshot(user, run_id: int) -> dict | None:
    from .models import JobRun
    from .progress import run_snapshot

    if user is None or not user.is_authenticated:
        return None
    run = JobRun.objects.restrict(user, "view").filter(pk=run_id).first()
    return run_snapshot(run) if run else None
