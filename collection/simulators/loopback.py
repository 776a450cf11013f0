"""The TCP listener the Modbus, IEC 62056-21 and IEC 870-5-102 simulators share: 127.0.0.1,
port 0 (a free one), every connection tracked so that stopping a simulated meter drops them all."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime


class LoopbackListener:
    """Mixin of a simulator dataclass with ``host``, ``port``, ``_server``, ``_writers`` and an
    ``async _serve(reader, writer)``; ``clock`` (a callable, or None for the real time) is the
    simulated time."""

    host: str
    port: int
    _server: asyncio.AbstractServer | None
    _writers: set
    clock: Callable[[], datetime] | None

    def now(self) -> datetime:
        return self.clock() if self.clock else datetime.now(UTC)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close_listener(self) -> None:
        for writer in list(self._writers):  # a stopped meter drops its connections
            writer.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError
