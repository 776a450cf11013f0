"""A simulator served on a pseudo-terminal: a serial line as far as a pyserial client can tell
(its path is a pyserial URL). Shared by the simulators that speak on serial lines."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass
class Pty:
    path: str
    master: int
    slave: int
    task: asyncio.Task

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


async def serve_on_pty(
    serve: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> Pty:
    """Run `serve(reader, writer)` on the master side of a new raw pty."""
    master, slave = os.openpty()
    tty.setraw(slave)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    rfile = os.fdopen(os.dup(master), "rb", buffering=0)
    wfile = os.fdopen(os.dup(master), "wb", buffering=0)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), rfile)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, wfile)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    task = asyncio.create_task(serve(reader, writer))
    return Pty(os.ttyname(slave), master, slave, task)
