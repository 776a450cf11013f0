"""One connection per physical line, shared by every unit id on it, one request at a time.

A Modbus TCP gateway or an RS-485 bus carries many meters; each meter's session borrows the
line's pymodbus client (opened by the first borrower) and holds the line's lock for each
request. When the last session returns it, the connection lingers ``LINGER_S`` for the next
meter of a bus read one after another (the reader serialises a shared line's sessions), then
closes; the event loop's end closes it too. Lines are per event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ExceptionResponse

from ..errors import (
    AccessDenied,
    ConnectionFailed,
    MalformedResponse,
    MeterTimeout,
    NotAssociated,
    ProtocolError,
)
from .settings import ModbusSettings

# Modbus exception codes (Modbus Application Protocol v1.1b3, 7).
ILLEGAL_FUNCTION = 1
ILLEGAL_DATA_ADDRESS = 2
ILLEGAL_DATA_VALUE = 3
SERVER_DEVICE_FAILURE = 4
SERVER_DEVICE_BUSY = 6
GATEWAY_PATH_UNAVAILABLE = 0x0A
GATEWAY_TARGET_NO_RESPONSE = 0x0B


def exception_error(code: int, what: str) -> ProtocolError:
    """The typed error of a Modbus exception response."""
    if code in (ILLEGAL_FUNCTION, ILLEGAL_DATA_ADDRESS, ILLEGAL_DATA_VALUE):
        return AccessDenied(f"{what}: meter answered exception {code}", code=code)
    if code == GATEWAY_TARGET_NO_RESPONSE:
        return MeterTimeout(f"{what}: the gateway's target did not answer (exception 11)")
    if code == GATEWAY_PATH_UNAVAILABLE:
        return ConnectionFailed(f"{what}: gateway path unavailable (exception 10)")
    return ProtocolError(f"{what}: meter answered exception {code}", retryable=True)


def _client(settings: ModbusSettings):
    parts = urlsplit(settings.url)
    if parts.scheme in ("tcp", "rtu+tcp"):
        framer = FramerType.SOCKET if parts.scheme == "tcp" else FramerType.RTU
        return AsyncModbusTcpClient(
            parts.hostname,
            port=parts.port,
            framer=framer,
            timeout=settings.timeout,
            retries=settings.retries,
            reconnect_delay=0,
        )
    return AsyncModbusSerialClient(
        settings.line,
        framer=FramerType.RTU,
        baudrate=settings.baudrate,
        timeout=settings.timeout,
        retries=settings.retries,
        reconnect_delay=0,
    )


class Line:
    """A shared client and its lock."""

    def __init__(self, key: str, settings: ModbusSettings) -> None:
        self.key = key
        self.client = _client(settings)
        self.lock = asyncio.Lock()
        self.retries = settings.retries
        self.users = 0
        self.requests = 0
        self._opened = False
        self.closer: asyncio.Task | None = None

    async def ensure_open(self, timeout: float) -> None:
        if self._opened and self.client.connected:
            return
        try:
            async with asyncio.timeout(timeout):
                ok = await self.client.connect()
        except TimeoutError:
            raise MeterTimeout(f"connect to {self.key} timed out") from None
        except (OSError, ModbusException) as ex:
            raise ConnectionFailed(f"connect to {self.key} failed: {ex}") from None
        if not ok:
            raise ConnectionFailed(f"connect to {self.key} failed")
        self._opened = True

    async def read(self, function: int, address: int, count: int, unit_id: int, timeout: float):
        """The words of one read (function 3 or 4); typed errors only."""
        what = f"unit {unit_id} fc{function} {address}+{count}"
        async with self.lock:
            if self.users <= 0:
                raise NotAssociated(f"line {self.key} is not open")
            # Another unit's failed exchange dropped the connection: open it afresh.
            await self.ensure_open(timeout)
            self.requests += 1
            call = (
                self.client.read_holding_registers
                if function == 3
                else self.client.read_input_registers
            )
            try:
                # The client's own timeout applies per try; this bounds the whole call.
                async with asyncio.timeout(timeout * (self.retries + 1) + 1):
                    response = await call(address, count=count, device_id=unit_id)
            except TimeoutError:
                await self._drop()
                raise MeterTimeout(f"{what}: no answer") from None
            except ModbusIOException as ex:
                gone = not self.client.connected  # the peer closed: not a silent meter
                await self._drop()
                if gone:
                    raise ConnectionFailed(f"{what}: connection closed by the peer") from None
                raise MeterTimeout(f"{what}: no (valid) answer: {ex}") from None
            except ConnectionException as ex:
                await self._drop()
                raise ConnectionFailed(f"{what}: {ex}") from None
            except ModbusException as ex:
                await self._drop()
                raise MalformedResponse(f"{what}: {ex}") from None
            except OSError as ex:
                await self._drop()
                raise ConnectionFailed(f"{what}: {ex}") from None
        if isinstance(response, ExceptionResponse) or response.isError():
            raise exception_error(getattr(response, "exception_code", 0), what)
        words = list(response.registers)
        if len(words) != count:
            raise MalformedResponse(f"{what}: answered {len(words)} registers")
        return words

    async def _drop(self) -> None:
        """After a failed exchange the stream may hold a late answer: start afresh."""
        self._opened = False
        with contextlib.suppress(Exception):
            self.client.close()

    async def close(self) -> None:
        self._opened = False
        with contextlib.suppress(Exception):
            self.client.close()


_LINES: dict[tuple[int, str], Line] = {}
LINGER_S = 2.0


async def borrow(settings: ModbusSettings) -> Line:
    """The line of `settings` in this event loop (created on first use)."""
    key = (id(asyncio.get_running_loop()), settings.line)
    line = _LINES.get(key)
    if line is None:
        line = _LINES[key] = Line(settings.line, settings)
    if line.closer is not None:
        line.closer.cancel()
        line.closer = None
    line.users += 1
    try:
        async with line.lock:
            await line.ensure_open(settings.timeout)
    except ProtocolError:
        await give_back(line)
        raise
    return line


async def give_back(line: Line) -> None:
    line.users -= 1
    if line.users <= 0 and line.closer is None:
        line.closer = asyncio.create_task(_close_later(line))


async def _close_later(line: Line) -> None:
    """Close an unused line after the linger (or when the event loop ends)."""
    try:
        await asyncio.sleep(LINGER_S)
    finally:
        if line.users <= 0:
            for key, value in list(_LINES.items()):
                if value is line:
                    del _LINES[key]
            await line.close()
