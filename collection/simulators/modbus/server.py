"""A deterministic Modbus server: many unit ids (one meter each) behind one TCP listener.

Framing is ``"tcp"`` (MBAP header, Modbus TCP) or ``"rtu"`` (address + PDU + CRC-16, as on an
RS-485 bus or through a TCP-serial converter). Requests are answered one at a time per
connection, as a bus would. Written here rather than taken from pymodbus's server so that the
driver (pymodbus's client) is checked against an independent implementation, and so faults
can be injected byte by byte:

* ``timeout``   the unit never answers;
* ``exception`` the unit answers exception 4 (server device failure);
* ``garbage``   the unit answers bytes that are no Modbus frame;
* ``slow``      the unit answers after ``delay_s``.

``start_pty()`` serves the same meters in RTU framing on a pseudo-terminal instead: an
RS-485 bus as far as a serial client can tell (its path is a pyserial URL).

A request for a unit id nobody has gets exception 11 (gateway target failed to respond) in
TCP framing and silence in RTU framing, as on a bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
from dataclasses import dataclass, field
from datetime import datetime

from collection.protocols.modbus import registermap as rm

from .. import loopback
from ..loopback import LoopbackListener
from . import values

FAULT_KINDS = ("timeout", "exception", "garbage", "slow")


class Fault(loopback.Fault):
    KINDS = FAULT_KINDS


@dataclass
class ModbusMeter:
    serial: str
    unit_id: int
    register_map: rm.RegisterMap
    fault: Fault | None = None
    requests: int = 0

    def read(self, function: int, address: int, count: int, t: datetime) -> list[int] | int:
        """The words of one read, or a Modbus exception code."""
        if function not in (3, 4):
            return 1  # illegal function
        if not 1 <= count <= rm.MAX_READ_REGISTERS or address + count > 0x10000:
            return 3  # illegal data value
        regs = [r for r in self.register_map.registers if r.function == function]
        if (
            not regs
            or address < min(r.address for r in regs)
            or (address + count > max(r.end for r in regs))
        ):
            return 2  # illegal data address
        out = [0] * count
        for reg in regs:
            if reg.address >= address and reg.end <= address + count:
                offset = reg.address - address
                out[offset : offset + reg.count] = values.words(self.serial, reg, t)
        return out


def crc16(data: bytes) -> int:
    """Modbus RTU CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def rtu_frame(unit: int, pdu: bytes) -> bytes:
    body = bytes([unit]) + pdu
    return body + struct.pack("<H", crc16(body))


def answer_pdu(meter: ModbusMeter, pdu: bytes, t: datetime) -> bytes:
    function = pdu[0]
    if len(pdu) != 5:
        return bytes([function | 0x80, 3])
    address, count = struct.unpack(">HH", pdu[1:5])
    result = meter.read(function, address, count, t)
    if isinstance(result, int):
        return bytes([function | 0x80, result])
    return bytes([function, 2 * count]) + struct.pack(f">{count}H", *result)


@dataclass
class ModbusFleet(LoopbackListener):
    """Meters by unit id on one listener (``framing`` "tcp" or "rtu")."""

    meters: list[ModbusMeter]
    framing: str = "tcp"
    _rng: random.Random = field(default_factory=lambda: random.Random(14), repr=False)

    def __post_init__(self) -> None:
        if self.framing not in ("tcp", "rtu"):
            raise ValueError("framing must be tcp or rtu")
        self.by_unit = {m.unit_id: m for m in self.meters}
        if len(self.by_unit) != len(self.meters):
            raise ValueError("two meters share a unit id")

    @property
    def url(self) -> str:
        scheme = "tcp" if self.framing == "tcp" else "rtu+tcp"
        return f"{scheme}://{self.host}:{self.port}"

    async def start_pty(self) -> str:
        """Serve on a new pseudo-terminal (RTU framing); returns the serial side's path."""
        if self.framing != "rtu":
            raise ValueError("a serial line carries RTU framing")
        return await super().start_pty()

    async def close(self) -> None:
        if self._pty is not None:
            await self._pty.close()
            self._pty = None
        await self._close_listener()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, idle: bool = True
    ) -> None:
        """Answer one connection (or the pty, which never idles out) until it closes."""
        self.connections += 1
        self._writers.add(writer)
        read_frame = self._read_tcp if self.framing == "tcp" else self._read_rtu
        try:
            while True:
                async with asyncio.timeout(self.idle_timeout if idle else None):
                    request = await read_frame(reader)
                if request is None:
                    continue  # a frame with a bad CRC: ignored, as a bus device does
                header, unit, pdu = request
                reply = await self._reply(unit, pdu)
                if reply is None:
                    continue
                if isinstance(reply, bytes | bytearray) and reply[:1] == b"\xff":  # garbage
                    writer.write(bytes(reply[1:]))
                elif self.framing == "tcp":
                    tid, _proto, _length = header
                    writer.write(struct.pack(">HHHB", tid, 0, len(reply) + 1, unit) + reply)
                else:
                    writer.write(rtu_frame(unit, reply))
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_tcp(self, reader):
        head = await reader.readexactly(7)
        tid, proto, length, unit = struct.unpack(">HHHB", head)
        if length < 2 or length > 254:
            raise ConnectionError("bad MBAP length")
        pdu = await reader.readexactly(length - 1)
        return (tid, proto, length), unit, pdu

    async def _read_rtu(self, reader):
        # Reads are the only requests served: unit, function, address, count, CRC = 8 bytes.
        frame = await reader.readexactly(8)
        if crc16(frame[:6]) != struct.unpack("<H", frame[6:])[0]:
            return None
        return None, frame[0], frame[1:6]

    async def _reply(self, unit: int, pdu: bytes) -> bytes | None:
        meter = self.by_unit.get(unit)
        if meter is None:
            return bytes([pdu[0] | 0x80, 0x0B]) if self.framing == "tcp" else None
        meter.requests += 1
        fault = meter.fault
        if fault is not None:
            if fault.kind == "timeout":
                return None
            if fault.kind == "exception":
                return bytes([pdu[0] | 0x80, 4])
            if fault.kind == "garbage":
                return b"\xff" + bytes(self._rng.randrange(256) for _ in range(11))
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay_s)
        return answer_pdu(meter, pdu, self.now())


def make_meters(
    count: int, register_map: str = "sdm630", *, first_serial: int = 70000001, first_unit: int = 1
) -> list[ModbusMeter]:
    """`count` meters of one model with consecutive serials and unit ids."""
    if first_unit < 1 or first_unit + count - 1 > 247:
        raise ValueError("unit ids are 1..247: at most 247 meters on one line")
    the_map = rm.load(register_map)
    return [ModbusMeter(str(first_serial + i), first_unit + i, the_map) for i in range(count)]
