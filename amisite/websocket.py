"""The base of every websocket consumer: a channel layer that fails closes the socket quietly.

When the channel layer's Redis times out or goes away (`redis.exceptions.TimeoutError` on a
read, a refused connection), the consumer used to die with a traceback from the ASGI server.
Now the socket is closed with 1013 "try again later" (the pages reconnect) and one line is
logged.
"""

from __future__ import annotations

import contextlib
import logging

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from redis.exceptions import RedisError

log = logging.getLogger("amisite.websocket")
TRY_AGAIN_LATER = 1013


class JsonConsumer(AsyncJsonWebsocketConsumer):
    """AsyncJsonWebsocketConsumer that survives its channel layer failing."""

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
