"""Byte transports for meter sessions: asyncio TCP and pyserial URLs.

* ``tcp://host:port`` -> asyncio stream (non-blocking, the common case);
* anything else is handed to ``serial.serial_for_url`` (``/dev/ttyUSB0``,
  ``socket://host:port``, ``rfc2217://host:port``, ``loop://`` ...), with the
  blocking pyserial calls run in a dedicated thread pool.

Every read takes a deadline (``loop.time()`` based); exceeding it raises
:class:`MeterTimeout`.  A closed/reset peer raises :class:`ConnectionFailed`.
:class:`LineLimiter` serialises sessions on one physical line and bounds the
number of concurrent sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

from .errors import ConnectionFailed, MeterTimeout


class Transport:
    """Abstract byte stream."""

    url: str = ""
    _buffer: bytearray  # bytes received and not read yet

    async def open(self, timeout: float) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def write(self, data: bytes) -> None:
        raise NotImplementedError

    async def read_exactly(self, n: int, deadline: float) -> bytes:
        raise NotImplementedError

    async def read_byte(self, deadline: float) -> int:
        return (await self.read_exactly(1, deadline))[0]

    async def set_baudrate(self, baudrate: int) -> None:
        """Change the line rate in place (IEC 62056-21 after the option select); no-op on TCP."""

    async def read_some(self, deadline: float) -> bytes:
        """At least one byte: whatever has arrived (for parsers that cut messages themselves)."""
        data = await self.read_exactly(1, deadline)
        buffered = bytes(self._buffer)
        self._buffer.clear()
        return data + buffered


def _remaining(deadline: float) -> float:
    return deadline - asyncio.get_running_loop().time()


def parse_tcp_url(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "tcp" or not parts.hostname or not parts.port:
        raise ValueError(f"invalid TCP url {url!r}; expected tcp://host:port")
    return parts.hostname, parts.port


class TcpTransport(Transport):
    def __init__(self, url: str) -> None:
        self.url = url
        self.host, self.port = parse_tcp_url(url)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._buffer = bytearray()

    async def open(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        except TimeoutError:
            raise MeterTimeout(f"connect to {self.host}:{self.port} timed out") from None
        except OSError as ex:
            raise ConnectionFailed(f"connect to {self.host}:{self.port} failed: {ex}") from None

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()

    async def write(self, data: bytes) -> None:
        if self._writer is None:
            raise ConnectionFailed("transport is closed")
        try:
            self._writer.write(data)
            # Bounded drain: a peer that stops reading must not hang us.
            async with asyncio.timeout(10.0):
                await self._writer.drain()
        except TimeoutError:
            raise MeterTimeout("write timed out") from None
        except OSError as ex:
            raise ConnectionFailed(f"write failed: {ex}") from None

    async def read_exactly(self, n: int, deadline: float) -> bytes:
        buf = self._buffer
        if len(buf) >= n:  # fast path: no timer needed
            data = bytes(buf[:n])
            del buf[:n]
            return data
        if self._reader is None:
            raise ConnectionFailed("transport is closed")
        remaining = _remaining(deadline)
        if remaining <= 0:
            raise MeterTimeout("no answer from meter")
        try:
            async with asyncio.timeout(remaining):
                while len(buf) < n:
                    chunk = await self._reader.read(65536)
                    if not chunk:
                        raise ConnectionFailed("connection closed by meter")
                    buf += chunk
        except TimeoutError:
            raise MeterTimeout("no (complete) answer from meter") from None
        except OSError as ex:
            raise ConnectionFailed(f"read failed: {ex}") from None
        data = bytes(buf[:n])
        del buf[:n]
        return data


_serial_pool: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _serial_pool
    if _serial_pool is None:
        _serial_pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="meter-serial")
    return _serial_pool


class SerialTransport(Transport):
    """pyserial URL transport; blocking calls run in a thread pool.

    Serial options may be passed as query parameters on plain device paths
    handled by us: ``/dev/ttyUSB0?baudrate=9600&parity=N``.  pyserial's own
    URL handlers (socket://, rfc2217://, loop://) keep their query strings.
    """

    POLL = 0.05  # max time one pool thread blocks in read()

    def __init__(self, url: str, baudrate: int = 9600, framing: dict | None = None) -> None:
        self.url = url
        self.baudrate = baudrate
        self.framing = dict(framing or {})  # pyserial bytesize/parity/stopbits (query wins)
        self._serial = None
        self._buffer = bytearray()

    def _open_blocking(self, timeout: float):
        import serial  # pyserial

        url, kwargs = self.url, {"baudrate": self.baudrate, **self.framing}
        if "://" not in url and "?" in url:
            url, query = url.split("?", 1)
            for key, values in parse_qs(query).items():
                v = values[-1]
                kwargs[key] = int(v) if v.isdigit() else v
        ser = serial.serial_for_url(url, do_not_open=True, **kwargs)
        ser.timeout = self.POLL
        ser.write_timeout = max(timeout, 1.0)
        ser.open()
        return ser

    async def open(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                self._serial = await loop.run_in_executor(_pool(), self._open_blocking, timeout)
        except TimeoutError:
            raise MeterTimeout(f"opening {self.url} timed out") from None
        except Exception as ex:  # serial.SerialException, OSError, ValueError
            raise ConnectionFailed(f"cannot open {self.url}: {ex}") from None

    async def close(self) -> None:
        ser, self._serial = self._serial, None
        if ser is not None:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(Exception):
                await loop.run_in_executor(_pool(), ser.close)

    async def set_baudrate(self, baudrate: int) -> None:
        """In place, after the bytes written so far left: reopening would drop the meter's
        first bytes at the new rate."""
        ser = self._serial
        if ser is None:
            raise ConnectionFailed("transport is closed")

        def switch() -> None:
            ser.flush()
            ser.baudrate = baudrate

        try:
            await asyncio.get_running_loop().run_in_executor(_pool(), switch)
        except Exception as ex:
            raise ConnectionFailed(f"baud switch on {self.url} failed: {ex}") from None
        self.baudrate = baudrate

    async def write(self, data: bytes) -> None:
        if self._serial is None:
            raise ConnectionFailed("transport is closed")
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(_pool(), self._serial.write, data)
        except Exception as ex:
            raise ConnectionFailed(f"write to {self.url} failed: {ex}") from None

    def _read_blocking(self, n: int) -> bytes:
        ser = self._serial
        if ser is None:
            raise ConnectionFailed("transport is closed")
        waiting = ser.in_waiting
        return ser.read(max(1, min(n, waiting)) if waiting else 1)

    async def read_exactly(self, n: int, deadline: float) -> bytes:
        loop = asyncio.get_running_loop()
        while len(self._buffer) < n:
            if loop.time() >= deadline:
                raise MeterTimeout("no (complete) answer from meter")
            if self._serial is None:
                raise ConnectionFailed("transport is closed")
            try:
                chunk = await loop.run_in_executor(
                    _pool(), self._read_blocking, max(n - len(self._buffer), 4096)
                )
            except ConnectionFailed:
                raise
            except Exception as ex:  # SerialException: peer closed etc.
                raise ConnectionFailed(f"read from {self.url} failed: {ex}") from None
            if chunk:
                self._buffer += chunk
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data


def open_transport(url: str, *, baudrate: int = 9600, framing: dict | None = None) -> Transport:
    """Transport for a URL (not yet opened); `framing` (pyserial's bytesize, parity, stopbits)
    applies to serial lines only."""
    if url.startswith("tcp://"):
        return TcpTransport(url)
    return SerialTransport(url, baudrate=baudrate, framing=framing)


def line_key(url: str) -> str:
    """The physical line a URL uses (sessions on one line are serialised)."""
    return url.split("?", 1)[0]


class LineLimiter:
    """Per-line exclusive access plus a global cap on concurrent sessions.

    ``async with limiter.session(line_key(url), timeout=...)`` waits (up to
    ``timeout``) for the line and for a free session slot.
    """

    def __init__(self, max_sessions: int = 256, per_line: int = 1) -> None:
        self._global = asyncio.Semaphore(max_sessions)
        self._per_line = per_line
        self._lines: dict[str, tuple[asyncio.Semaphore, int]] = {}

    def busy_lines(self) -> list[str]:
        return list(self._lines)

    @contextlib.asynccontextmanager
    async def session(self, line: str, timeout: float | None = None) -> AsyncIterator[None]:
        sem, users = self._lines.get(line, (None, 0))
        if sem is None:
            sem = asyncio.Semaphore(self._per_line)
        self._lines[line] = (sem, users + 1)
        acquired_line = acquired_global = False
        try:
            try:
                async with asyncio.timeout(timeout):
                    await sem.acquire()
                    acquired_line = True
                    await self._global.acquire()
                    acquired_global = True
            except TimeoutError:
                raise MeterTimeout(f"line {line} busy") from None
            yield
        finally:
            if acquired_global:
                self._global.release()
            if acquired_line:
                sem.release()
            sem2, users2 = self._lines[line]
            if users2 <= 1:
                del self._lines[line]
            else:
                self._lines[line] = (sem2, users2 - 1)
