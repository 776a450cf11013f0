"""The TCP listener the Modbus, IEC 62056-21 and IEC 870-5-102 simulators share: 127.0.0.1,
port 0 (a free one), every connection tracked so that stopping a simulated meter drops them all."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

from .pty import Pty, serve_on_pty

HOST = "127.0.0.1"


@dataclass
class Fault:
    """An injected fault of one of its simulator's ``KINDS`` (a subclass names them)."""

    KINDS: ClassVar[tuple[str, ...]] = ()
    kind: str
    delay_s: float = 5.0

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"unknown fault {self.kind!r}")


class OpenConnections(set):
    """The open connections' writers, and the most that were ever open at once (``peak``):
    a shared line's sessions taking turns keep it at 1."""

    peak = 0

    def add(self, writer) -> None:
        super().add(writer)
        self.peak = max(self.peak, len(self))


@dataclass(kw_only=True)
class LoopbackListener:
    """Base of a simulator dataclass that implements ``async _serve(reader, writer, idle=True)``;
    ``clock`` (a callable, or None for the real time) is the simulated time."""

    host: str = HOST
    port: int = 0
    clock: Callable[[], datetime] | None = None
    idle_timeout: float = 120.0
    connections: int = 0
    pty_path: str | None = None
    _server: asyncio.AbstractServer | None = field(default=None, repr=False)
    _pty: Pty | None = field(default=None, repr=False)
    _writers: OpenConnections = field(default_factory=OpenConnections, repr=False)

    @property
    def peak_connections(self) -> int:
        """The most connections that were open at once."""
        return self._writers.peak

    @property
    def url(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    async def start_pty(self) -> str:
        """Serve on a new pseudo-terminal instead: a serial line (an optical head or an RS-485
        bus) as far as a pyserial client can tell; returns its path."""
        self._pty = await serve_on_pty(lambda r, w: self._serve(r, w, idle=False))
        self.pty_path = self._pty.path
        return self.pty_path

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

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, idle: bool = True
    ) -> None:
        raise NotImplementedError
