"""At most N requests inside Django per web process; the rest wait in the event loop.

Django runs each sync request on a thread of its own (asgiref gives every request context a
fresh single-thread executor), so without a bound a burst of 500 requests is 500 threads
all asking the connection pool at once. The gate lets `AMI_WEB_THREADS` requests in at a
time; a waiting request holds no thread and no connection, only a coroutine. One that waits
longer than `AMI_WEB_QUEUE_TIMEOUT` seconds is answered 503 with Retry-After. Websockets
are not gated: they are long-lived and do their database work on threads of their own
(`amisite.websocket.socket_db`). Neither is `/healthz`: it tells a load balancer whether the
process and its database answer, and the benches' baseline is the time of a request that
does not queue; its one connection is counted in the pool (`capacity.HEALTHZ_CONNECTIONS`).

When a request arrived and when it got its slot are left in its scope (`GATE_KEY`), for
`amisite.observability` to tell the wait for a slot from the time in Django.
"""

from __future__ import annotations

import asyncio
import logging
import time

from .middleware import MESSAGE, RETRY_AFTER_S

logger = logging.getLogger("amisite.busy")
BODY = MESSAGE.encode() + b"\n"
UNGATED_PATHS = frozenset({"/healthz"})
GATE_KEY = "ami_gate"  # scope key: (perf_counter at arrival, perf_counter with a slot)


class RequestGate:
    """ASGI middleware bounding concurrent HTTP requests, with a bounded wait for a slot."""

    def __init__(self, app, limit: int, queue_timeout: float):
        self.app = app
        self.limit = limit
        self.queue_timeout = queue_timeout
        self._slots: asyncio.Semaphore | None = None
        self.waiting = 0

    def _semaphore(self) -> asyncio.Semaphore:
        if self._slots is None:  # made in the server's event loop, on first use
            self._slots = asyncio.Semaphore(self.limit)
        return self._slots

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") in UNGATED_PATHS:
            return await self.app(scope, receive, send)
        slots = self._semaphore()
        arrived = time.perf_counter()
        self.waiting += 1
        try:
            async with asyncio.timeout(self.queue_timeout):
                await slots.acquire()
        except TimeoutError:
            logger.warning(
                "%d requests waiting for %d slots: 503 for %s", self.waiting, self.limit,
                scope.get("path"),
            )  # fmt: skip
            return await busy(send)
        finally:
            self.waiting -= 1
        scope[GATE_KEY] = (arrived, time.perf_counter())
        try:
            return await self.app(scope, receive, send)
        finally:
            slots.release()


async def busy(send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"retry-after", str(RETRY_AFTER_S).encode()),
                (b"cache-control", b"no-store"),
                (b"content-length", str(len(BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": BODY})
