"""Live progress of one bulk command over a websocket, for users who may see it."""

from __future__ import annotations

from amisite.websocket import JsonConsumer, socket_db
from collection.progress import commands_group

from .actions import bulk_progress
from .models import BulkCommand


class BulkProgressConsumer(JsonConsumer):
    """`ws/bulk-commands/<id>/`: the bulk command's state and its commands' counts on
    connect, then after every change (`collection.progress.publish_commands` after commit).
    Out of scope or unknown: closed with 4404, like a 404. Each push is re-read in the
    user's scope, so a socket never shows more than the page would."""

    async def connect(self):
        self.user = self.scope.get("user")
        self.bulk_id = int(self.scope["url_route"]["kwargs"]["bulk_id"])
        snapshot = await socket_db(_visible_progress)(self.user, self.bulk_id)
        if snapshot is None:
            await self.close(code=4404)
            return
        self.group = commands_group(f"bulk:{self.bulk_id}")
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "bulk", "bulk": snapshot})

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def commands_progress(self, event):
        snapshot = await socket_db(_visible_progress)(self.user, self.bulk_id)
        if snapshot is None:  # out of scope meanwhile
            await self.close(code=4404)
            return
        await self.send_json({"type": "bulk", "bulk": snapshot})


def _visible_progress(user, bulk_id: int) -> dict | None:
    if user is None or not user.is_authenticated:
        return None
    if not user.has_perm("loadcontrol.view_bulkcommand"):
        return None
    bulk = BulkCommand.objects.restrict(user, "view").filter(pk=bulk_id).first()
    return bulk_progress(bulk) if bulk else None
