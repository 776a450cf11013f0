"""A deterministic IEC 62056-21 meter line: many meters behind one TCP listener, each
answering the sign-on that names its device address (as on a bus or a TCP-serial converter).

Per connection: idle -> sign-on ``/?addr!`` -> identification -> option select -> readout
(option 0, back to idle) or programming mode (option 1: ``P0``, then ``P1`` password,
``R1``/``W1`` of the clock and any readout address, ``R5`` of the load profile ``P.01`` and
the event log ``P.98`` in the generic plug-in's layout, ``B0`` back to idle). A meter in mode A
or B (``mode``) sends its readout right after its identification (mode B names 9600 baud).
Profile and log values come from the shared value model (true time, not the meter's clock);
``profile_status`` marks intervals ``{interval end: status byte}``.

Faults per meter:

* ``timeout`` the meter never answers its sign-on;
* ``garbage`` the readout (and every programming answer) is bytes that are no message;
* ``bcc``     the readout's (and every R1 answer's) BCC is wrong, repeats too;
* ``bcc-once``  a readout (or R5 answer) block's BCC is wrong the first time, right when
  repeated after NAK;
* ``slow``    the readout comes after ``delay_s``.

``echo=True`` on a meter repeats every request back first, as an optical head does.
A sign-on with an address nobody has gets silence; ``/?!`` is answered only by a lone meter.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from collection.protocols.iec62056_21 import clock, codec
from collection.protocols.iec62056_21 import profile as plugin

from .. import loopback
from ..loopback import LoopbackListener
from . import values

FAULT_KINDS = ("timeout", "garbage", "bcc", "bcc-once", "slow")
IDENT = b"/AMi5SIM21\r\n"  # baud character 5: 9600 baud; lowercase "i": 20 ms reaction time
IDENTS = {"C": IDENT, "B": b"/AMiESIM21\r\n", "A": b"/AMiJSIM21\r\n"}  # E: mode B 9600


class Fault(loopback.Fault):
    KINDS = FAULT_KINDS


@dataclass
class Iec21Meter:
    serial: str
    address: str
    password: str = "00000000"
    clock_offset_s: float = 0.0  # the meter's clock minus true time (W1 moves it)
    echo: bool = False
    block_size: int | None = None  # readout in partial blocks of this many bytes (EOT, ACK)
    fault: Fault | None = None
    mode: str = "C"  # "A" or "B": readout straight after the identification, no programming
    profile_status: dict = field(default_factory=dict)  # {interval end: profile status byte}
    sign_ons: int = 0
    # The meter's clock on local time of this zone (readout, stamps, W1), summer time
    # included; None: UTC.
    time_zone: str | None = None

    def meter_time(self, t: datetime) -> datetime:
        return (t + timedelta(seconds=self.clock_offset_s)).replace(microsecond=0)

    @property
    def zone(self) -> ZoneInfo | None:
        return ZoneInfo(self.time_zone) if self.time_zone else None


@dataclass
class Iec21Fleet(LoopbackListener):
    meters: list[Iec21Meter]
    _rng: random.Random = field(default_factory=lambda: random.Random(21), repr=False)

    def __post_init__(self) -> None:
        self.by_address = {m.address: m for m in self.meters}
        if len(self.by_address) != len(self.meters):
            raise ValueError("two meters share a device address")

    async def close(self) -> None:
        if self._pty is not None:
            await self._pty.close()
            self._pty = None
        await self._close_listener()

    def _meter(self, sign_on: bytes) -> Iec21Meter | None:
        if not (sign_on.startswith(b"/?") and sign_on.endswith(b"!\r\n")):
            return None
        address = sign_on[2:-3].decode("ascii", "replace")
        if not address and len(self.meters) == 1:
            return self.meters[0]
        return self.by_address.get(address)

    def _garbage(self) -> bytes:
        return b"\xfe" + bytes(self._rng.randrange(256) for _ in range(15))

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, idle: bool = True
    ) -> None:
        """Answer one connection (or the pty, which never idles out) until it closes."""
        idle_timeout = self.idle_timeout if idle else None
        self.connections += 1
        self._writers.add(writer)
        try:
            last = None  # (meter, body) of the last readout block: a NAK repeats it
            while True:
                async with asyncio.timeout(idle_timeout):
                    line = await reader.readexactly(1)
                    if line == codec.NAK:
                        if last is not None:
                            if last[0].echo:
                                writer.write(line)
                            writer.write(self._block(*last, repeat=True))
                        continue
                    if line != b"\n":
                        line += await reader.readuntil(b"\n")
                meter = self._meter(line)
                if meter is None:
                    continue  # not ours, or no sign-on: a meter keeps quiet
                meter.sign_ons += 1
                if meter.echo:
                    writer.write(line)
                if meter.fault and meter.fault.kind == "timeout":
                    continue
                writer.write(IDENTS[meter.mode])
                await writer.drain()
                if meter.mode != "C":
                    last = await self._readout(meter, reader, writer)
                    continue
                async with asyncio.timeout(idle_timeout):
                    option = await reader.readuntil(b"\n")
                if meter.echo:
                    writer.write(option)
                if len(option) != 6 or option[:2] != codec.ACK + b"0":
                    continue
                if option[3:4] == b"1":
                    await self._programming(meter, reader, writer)
                else:
                    last = await self._readout(meter, reader, writer)
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
            asyncio.CancelledError,
        ):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):  # a stopped fleet
                await writer.wait_closed()

    def _block(
        self,
        meter: Iec21Meter,
        body: bytes,
        start: bytes = codec.STX,
        end: bytes = codec.ETX,
        *,
        repeat: bool = False,
    ) -> bytes:
        kind = meter.fault.kind if meter.fault else None
        if kind == "garbage":
            return self._garbage()
        frame = codec.block(body, start=start, end=end)
        if kind == "bcc" or (kind == "bcc-once" and not repeat):
            frame = frame[:-1] + bytes([frame[-1] ^ 0x5A])
        return frame

    async def _readout(self, meter: Iec21Meter, reader, writer) -> tuple | None:
        """Send the readout; returns its last block's (meter, body) for a NAK to repeat."""
        if meter.fault and meter.fault.kind == "slow":
            await asyncio.sleep(meter.fault.delay_s)
        t = self.now()
        return await self._blocks(
            meter,
            values.readout_body(meter.serial, t, meter.meter_time(t), meter.zone),
            reader,
            writer,
        )

    async def _blocks(self, meter: Iec21Meter, body: bytes, reader, writer) -> tuple | None:
        """`body` in partial blocks of ``block_size`` (each acknowledged) and a last one."""
        size = meter.block_size or len(body)
        parts = [body[i : i + size] for i in range(0, len(body), size)]
        for part in parts[:-1]:  # partial blocks: each ends in EOT and waits for an ACK
            writer.write(self._block(meter, part, end=codec.EOT))
            await writer.drain()
            async with asyncio.timeout(self.idle_timeout):
                ack = await reader.readexactly(1)
                while ack == codec.NAK:  # repeat the block
                    if meter.echo:
                        writer.write(ack)
                    writer.write(self._block(meter, part, end=codec.EOT, repeat=True))
                    ack = await reader.readexactly(1)
            if meter.echo:
                writer.write(ack)
            if ack != codec.ACK:
                return None
        writer.write(self._block(meter, parts[-1]))
        await writer.drain()
        return meter, parts[-1]

    async def _programming(self, meter, reader, writer) -> None:
        opening = b"P0" + codec.STX + f"({meter.serial})".encode()
        # "bcc-once" is about data answers: the P0 opening comes right.
        writer.write(self._block(meter, opening, codec.SOH, repeat=True))
        await writer.drain()
        authorised = False
        last = None  # the last R5 answer's last block: a NAK repeats it
        while True:
            async with asyncio.timeout(self.idle_timeout):
                first = await reader.readexactly(1)
                if first == codec.NAK:
                    if meter.echo:
                        writer.write(first)
                    if last is not None:
                        writer.write(self._block(*last, repeat=True))
                    continue
                head = first + await reader.readuntil(codec.ETX)
                frame = head + await reader.readexactly(1)
            if meter.echo:
                writer.write(frame)
            start = frame.find(codec.SOH)
            if start < 0:
                writer.write(codec.NAK)
                continue
            try:
                parsed = codec.parse_block(frame[start:])
            except codec.MalformedResponse:
                writer.write(codec.NAK)
                continue
            name, _, data = parsed.body.partition(codec.STX)
            if name == b"B0":
                return
            if name == b"P1":
                authorised = data == f"({meter.password})".encode("latin-1")
                writer.write(codec.ACK if authorised else codec.NAK)
            elif not authorised:
                writer.write(codec.NAK)
            elif name == b"R1":
                writer.write(self._block(meter, self._r1(meter, data)))
            elif name == b"R5":
                body = self._r5(meter, data)
                if body is None:
                    writer.write(codec.NAK)
                else:
                    last = await self._blocks(meter, body, reader, writer)
            elif name == b"W1":
                writer.write(codec.ACK if self._w1(meter, data) else codec.NAK)
            else:
                writer.write(codec.NAK)
            await writer.drain()

    def _r1(self, meter: Iec21Meter, data: bytes) -> bytes:
        address = data.split(b"(", 1)[0].decode("ascii", "replace")
        t = self.now()
        for name, vals in values.readout(meter.serial, t, meter.meter_time(t), meter.zone):
            if name == address:
                value, unit = vals[0]
                if address == values.TIME:
                    value = value.replace(":", "")
                elif address == values.DATE:
                    value = value.replace("-", "")
                return f"({value}*{unit})".encode() if unit else f"({value})".encode()
        return b"(ERROR)"

    def _r5(self, meter: Iec21Meter, data: bytes) -> bytes | None:
        """The answer to ``R5 P.01(from;to)`` or ``R5 P.98(from;to)`` (None: refused)."""
        try:
            sets = codec.parse_data(data)
            start, end = plugin.parse_range(sets[0].value, meter.zone)
        except (codec.MalformedResponse, IndexError):
            return None
        now = self.now()
        if sets[0].address == values.LOAD_PROFILE:
            return values.profile_body(
                meter.serial, start, min(end, now), meter.profile_status, meter.zone
            )
        if sets[0].address == values.EVENT_LOG:
            return values.log_body(meter.serial, start, min(end, now), meter.zone)
        return None

    def _w1(self, meter: Iec21Meter, data: bytes) -> bool:
        """Set the time or the date (digits only); the other half of the clock is kept."""
        try:
            sets = codec.parse_data(data)
        except codec.MalformedResponse:
            return False
        if not sets or sets[0].address not in (values.TIME, values.DATE):
            return False
        digits = "".join(c for c in sets[0].value if c.isdigit())
        t = self.now()
        current, _summer = clock.to_local(meter.meter_time(t), meter.zone)
        try:
            if sets[0].address == values.TIME:
                new = current.replace(
                    hour=int(digits[0:2]), minute=int(digits[2:4]), second=int(digits[4:6])
                )
            else:
                new = current.replace(
                    year=2000 + int(digits[0:2]), month=int(digits[2:4]), day=int(digits[4:6])
                )
            new = clock.to_utc(new, meter.zone, near=t)
        except (ValueError, IndexError, codec.MalformedResponse):
            return False
        meter.clock_offset_s = (new - t.replace(microsecond=0)).total_seconds()
        return True


def make_meters(
    count: int, *, first_serial: int = 21000001, password: str = "00000000"
) -> list[Iec21Meter]:
    """`count` meters with consecutive serials, each addressed by its serial."""
    return [
        Iec21Meter(str(first_serial + i), str(first_serial + i), password) for i in range(count)
    ]


__all__ = ["FAULT_KINDS", "Fault", "Iec21Fleet", "Iec21Meter", "make_meters"]
