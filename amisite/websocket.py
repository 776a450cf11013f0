"""The base of every websocket consumer: a channel layer that fails closes the socket quietly.

When the channel layer's Redis times out or goes away (`redis.exceptions.TimeoutError` on a
read, a refused connection), the consumer used to die with a traceback from the ASGI server.
Now the socket is closed with 1013 "try again later" (the pages reconnect) and one line is
logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from redis.exceptions import RedisError

from accounts.sessions import access_fingerprint, socket_group

log = logging.getLogger("amisite.websocket")
TRY_AGAIN_LATER = 1013


ACCESS_CHANGED = 4401  # close code: sign in again / reconnect to be authorised afresh


class JsonConsumer(AsyncJsonWebsocketConsumer):
    """AsyncJsonWebsocketConsumer that survives its channel layer failing, and closes when
    its user signs out, is deactivated or changes roles (accounts/sessions.py): on a push
    to the user's group, and at least every AMI_WS_RECHECK_SECONDS."""

    async def accept(self, subprotocol=None, headers=None):
        await super().accept(subprotocol, headers)
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return
        self._ami_user_id = user.pk
        session = self.scope.get("session")
        self._ami_session_key = getattr(session, "session_key", None)
        self._ami_access = await self._access()
        await self.channel_layer.group_add(socket_group(user.pk), self.channel_name)
        self._ami_watch = asyncio.ensure_future(self._watch_access())

    async def _access(self):
        return await database_sync_to_async(access_fingerprint)(
            self._ami_user_id, self._ami_session_key
        )

    async def _watch_access(self):
        while True:
            await asyncio.sleep(settings.AMI_WS_RECHECK_SECONDS)
            if await self._recheck():
                return

    async def _recheck(self) -> bool:
        """Close the socket if its user's access changed; True when closed."""
        now = await self._access()
        if now is not None and now == self._ami_access:
            return False
        await self.close(code=ACCESS_CHANGED)
        return True

    async def access_changed(self, event):
        if await self._recheck():
            watch = getattr(self, "_ami_watch", None)
            if watch is not None:
                watch.cancel()

    async def websocket_disconnect(self, message):
        watch = getattr(self, "_ami_watch", None)
        if watch is not None:
            watch.cancel()
        if hasattr(self, "_ami_user_id"):
            with contextlib.suppress(Exception):
                await self.channel_layer.group_discard(
                    socket_group(self._ami_user_id), self.channel_name
                )
        await super().websocket_disconnect(message)

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        except RedisError as exc:
            log.warning(
                "websocket %s closed: channel layer unavailable (%s: %s)",
                scope.get("path", "?"),
                type(exc).__name__,
                exc,
            )
            with contextlib.suppress(Exception):  # the client may be gone already
                await send({"type": "websocket.close", "code": TRY_AGAIN_LATER})
