"""The IEC 62056-21 session: readout for registers (and the clock without a password),
programming mode with the P1 password for R1/W1 of the clock and R5 of the load profile
(``P.01``) and the event log (``P.98``) through the meter model's profile plug-in.

The meter's identification says its mode: mode C (a digit) takes an option select and has a
programming mode; mode B (a letter A..I) switches to its rate at once and sends its readout,
mode A sends it at once at the sign-on rate. A mode A or B meter has no programming mode: its
clock comes from the readout, and profile, events and clock set are not supported (the session
drops those capabilities as soon as it has seen the identification). Without a P1 password a
session has none of the three either: the reader reads such a meter's registers, not fails it.

Each readout or programming dialogue starts with its own sign-on (a meter returns to its
idle state after a readout or a break). One readout serves every register and instantaneous
value asked in the session. Over TCP there is no baud switch; on a pyserial line the rate
changes in place after the option select (reopening the port would lose the meter's first
bytes). An optical head echoes what we send: a message equal to the last one sent is dropped.
After any error the connection is dropped: a late answer must never be taken for the next.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from .. import base
from ..errors import (
    AccessDenied,
    AuthenticationFailed,
    MalformedResponse,
    NotAssociated,
    NotSupported,
    ProtocolError,
)
from ..transport import Transport, open_transport
from . import clock, codec, profile
from .obis import obis_of, profile_address
from .settings import Iec21Settings

PHASE_VOLTAGES = ("1-0:32.7.0*255", "1-0:52.7.0*255", "1-0:72.7.0*255")
PHASE_CURRENTS = ("1-0:31.7.0*255", "1-0:51.7.0*255", "1-0:71.7.0*255")
PHASE_ANGLES = ("1-0:81.7.4*255", "1-0:81.7.15*255", "1-0:81.7.26*255")
FREQUENCY = "1-0:14.7.0*255"
ACTIVE_POWER = "1-0:1.7.0*255"
REDACTED_P1 = codec.password("***")
SERIAL_FRAMING = {  # pyserial options of a serial line's character framing
    "7E1": {"bytesize": 7, "parity": "E", "stopbits": 1},  # mode C as the standard says
    "8N1": {"bytesize": 8, "parity": "N", "stopbits": 1},  # converters that re-frame
}


class NoProgrammingMode(NotSupported):
    """The meter signed on in mode A or B: it has no programming mode (no R1/R5/W1)."""


# What needs programming mode: gone from a session whose meter turns out mode A or B.
PROGRAMMING = frozenset({base.SET_CLOCK, base.READ_LOAD_PROFILE, base.READ_EVENTS})


class Iec21Session(base.MeterSession):
    capabilities = frozenset(
        {
            base.READ_CLOCK,
            base.READ_REGISTERS,
            base.READ_INSTANTANEOUS,
            base.SET_CLOCK,
            base.READ_LOAD_PROFILE,
            base.READ_EVENTS,
        }
    )

    def __init__(self, settings: Iec21Settings, counters=None) -> None:
        self.settings = settings
        if settings.password is None:  # W1 and R5 need programming mode, and that the P1
            self.capabilities = type(self).capabilities - PROGRAMMING  # password
        self.dialect = clock.DIALECTS[settings.clock]
        # The meter's clock on local time (a -local clock plug-in): the utility's zone.
        self.zone = ZoneInfo(settings.time_zone) if self.dialect.local else None
        self.profile_dialect = profile.DIALECTS[settings.profile]
        self.exchange_log = [] if settings.exchange_log else None
        self.identification: codec.Identification | None = None
        self._transport: Transport | None = None
        self._reader = codec.Reader()
        self._echo: bytes | None = None  # what we sent last, until it is (not) echoed
        self._held = bytearray()
        self._received_at: float | None = None  # loop time of the meter's last message
        self._readout: list[codec.DataSet] | None = None
        self._readout_at: datetime | None = None

    # ----------------------------------------------------------------- the line

    async def open(self) -> None:
        transport = open_transport(
            self.settings.url,
            baudrate=self.settings.baudrate,
            framing=SERIAL_FRAMING[self.settings.serial_framing],
        )
        await transport.open(self.settings.timeout)
        self._transport = transport

    async def close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.close()

    async def _send(self, data: bytes) -> None:
        if self._transport is None:
            raise NotAssociated("session is not open")
        if self._received_at is not None:  # the meter's reaction time after its last message
            wait = self._received_at + self._reaction_s() - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)
        if self.exchange_log is not None:
            logged = REDACTED_P1 if data.startswith(b"\x01P1") else data
            self.exchange_log.append(base.Exchange("tx", logged, datetime.now(UTC)))
        self._echo = data
        await self._transport.write(data)

    def _reaction_s(self) -> float:
        """The pause before we speak: the settings', else 20 ms when the identification's third
        letter is lowercase and 200 ms otherwise (the meter may not listen sooner)."""
        if self.settings.reaction_s is not None:
            return self.settings.reaction_s
        ident = self.identification
        return 0.02 if ident is not None and ident.reaction_20ms else 0.2

    async def _receive(self) -> bytes:
        """The meter's next message. An echo of what we sent (an optical head) is dropped byte
        by byte as it comes: bytes that stop matching it are the meter's own."""
        if self._transport is None:
            raise NotAssociated("session is not open")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.timeout
        while True:
            message = None if self._echo else self._reader.next()
            if message is not None:
                self._received_at = loop.time()
                if self.exchange_log is not None:
                    self.exchange_log.append(base.Exchange("rx", message, datetime.now(UTC)))
                return message
            data = await self._transport.read_some(deadline)
            if not self._echo:
                self._reader.feed(data)
                continue
            self._held += data
            size = len(self._echo)
            if self._held[:size] == self._echo:  # a whole echo: dropped
                rest = bytes(self._held[size:])
                self._held.clear()
                self._echo = None
                self._reader.feed(rest)
            elif not self._echo.startswith(bytes(self._held)):  # no echo: the meter's answer
                self._reader.feed(bytes(self._held))
                self._held.clear()
                self._echo = None

    async def _dialogue(self, call):
        """Run `call`; on any protocol error drop the line (and reopen it for the next)."""
        if self._transport is None:
            raise NotAssociated("session is not open")
        try:
            return await call()
        except ProtocolError:
            await self._reset()
            raise

    async def _reset(self) -> None:
        await self.close()
        self._reader = codec.Reader()
        self._echo = None
        self._held.clear()
        try:
            await self.open()
        except ProtocolError:
            pass  # the next call says NotAssociated

    async def _sign_on(self, mode: str) -> str:
        """Sign on and select `mode` (mode C); returns the meter's mode ("A", "B" or "C"). A
        mode A or B meter sends its readout next, whatever was asked."""
        await self._send(codec.sign_on(self.settings.address))
        line = await self._receive()
        self.identification = ident = codec.parse_identification(line)
        if ident.mode != "C":
            self.capabilities = self.capabilities - PROGRAMMING
            if ident.mode == "B":
                rate = ident.baud_rate
                if rate is None or rate > self.settings.max_baudrate:
                    raise NotSupported(f"mode B meter at baud character {ident.baud_char!r}")
                await self._transport.set_baudrate(rate)
            return ident.mode
        baud_char = ident.baud_char if ident.baud_char in codec.BAUD_RATES else "0"
        while codec.BAUD_RATES[baud_char] > self.settings.max_baudrate and baud_char > "0":
            baud_char = str(int(baud_char) - 1)
        await self._send(codec.option_select(baud_char, mode))
        await self._transport.set_baudrate(codec.BAUD_RATES[baud_char])
        return "C"

    async def _block(self) -> codec.Block:
        message = await self._receive()
        if message in (codec.ACK, codec.NAK):
            raise MalformedResponse(f"expected a data block, got {message!r}")
        return codec.parse_block(message)

    async def _data(self, first: bytes | None = None) -> bytes:
        """The body of a data message in one or several (partial, EOT) blocks: each partial
        block acknowledged, a wrong BCC answered with NAK (the meter repeats the block) up to
        `bcc_repeats` times per block, then :class:`~.codec.BccError`. `first`: a message
        already received."""
        body = bytearray()
        repeats = 0
        while True:
            try:
                if first is not None:
                    if first in (codec.ACK, codec.NAK):
                        raise MalformedResponse(f"expected a data block, got {first!r}")
                    message, first = first, None
                    part = codec.parse_block(message)
                else:
                    part = await self._block()
            except codec.BccError:  # a line error: NAK asks the meter to repeat
                if repeats >= self.settings.bcc_repeats:
                    raise
                repeats += 1
                await self._send(codec.NAK)
                continue
            repeats = 0  # counted per block
            body += part.body
            if not part.partial:
                return bytes(body)
            await self._send(codec.ACK)

    # ----------------------------------------------------------------- readout

    async def readout(self) -> list[codec.DataSet]:
        """The meter's readout (mode C, option 0): every data set it lists."""
        if self._readout is None:

            async def call():
                await self._sign_on(codec.MODE_READOUT)
                return codec.parse_data(await self._data())

            self._readout = await self._dialogue(call)
            self._readout_at = datetime.now(UTC)
        return self._readout

    def _values(self, readout: list[codec.DataSet]) -> dict[str, codec.DataSet]:
        out = {}
        for data_set in readout:
            code = obis_of(data_set.address)
            if code is not None and code not in out:
                out[code] = data_set
        return out

    def _register(self, code: str, data_set: codec.DataSet) -> base.RegisterValue:
        value, unit = codec.to_contract(data_set.value, data_set.unit)
        capture = None
        if len(data_set.values) > 1:
            capture = clock.timestamp(data_set.values[1][0], self.zone)
        return base.RegisterValue(
            obis=code,
            value=value,
            unit=unit,
            capture_time=capture,
            raw=f"{data_set.value}*{data_set.unit}" if data_set.unit else data_set.value,
        )

    async def read_registers(self, obis: list[str]) -> list[base.RegisterValue]:
        values = self._values(await self.readout())
        out = []
        for asked in obis:
            code = obis_of(asked) or asked
            data_set = values.get(code)
            if data_set is None:
                out.append(
                    base.RegisterValue(obis=code, value=None, unit=None, error="not in the readout")
                )
            else:
                out.append(self._register(code, data_set))
        return out

    async def read_instantaneous(self) -> base.InstantaneousValues:
        values = self._values(await self.readout())

        def get(code):
            data_set = values.get(code)
            return None if data_set is None else self._register(code, data_set).value

        return base.InstantaneousValues(
            read_at=self._readout_at or datetime.now(UTC),
            voltages=tuple(get(c) for c in PHASE_VOLTAGES),
            currents=tuple(get(c) for c in PHASE_CURRENTS),
            angles=tuple(get(c) for c in PHASE_ANGLES),
            frequency=get(FREQUENCY),
            active_power=get(ACTIVE_POWER),
        )

    # ----------------------------------------------------------------- programming mode

    async def _programming(self, call):
        """Sign on in programming mode, give the P1 password, run `call`, break (B0)."""

        async def dialogue():
            if await self._sign_on(codec.MODE_PROGRAMMING) != "C":
                # The readout comes anyway: keep it (the clock is in it), then say why not.
                self._readout = codec.parse_data(await self._data())
                self._readout_at = datetime.now(UTC)
                raise NoProgrammingMode(
                    f"mode {self.identification.mode} meter: no programming mode"
                )
            opening = await self._block()  # SOH P0 STX (serial) ETX BCC
            if opening.start != codec.SOH or not opening.body.startswith(b"P0"):
                raise MalformedResponse(f"expected P0, got {opening.body[:20]!r}")
            if self.settings.password is not None:
                await self._send(codec.password(self.settings.password))
                answer = await self._receive()
                if answer != codec.ACK:
                    raise AuthenticationFailed("the meter refused the P1 password")
            try:
                return await call()
            finally:
                if self._transport is not None:
                    await self._send(codec.BREAK)

        return await self._dialogue(dialogue)

    async def _r1(self, address: str) -> codec.DataSet:
        await self._send(codec.read(address))
        message = await self._receive()
        if message == codec.NAK:
            raise AccessDenied(f"R1 {address} refused")
        sets = codec.parse_data(codec.parse_block(message).body)
        if not sets or sets[0].value.upper().startswith("ERROR"):
            raise AccessDenied(f"R1 {address}: {sets[0].value if sets else 'empty answer'}")
        return sets[0]

    async def _w1(self, address: str, value: str) -> None:
        await self._send(codec.write(address, value))
        answer = await self._receive()
        if answer != codec.ACK:
            raise AccessDenied(f"W1 {address} refused")

    async def _clock_r1(self) -> base.ClockReading:
        t = await self._r1(self.dialect.time_address)
        d = await self._r1(self.dialect.date_address)
        now = base.utcnow()
        return base.ClockReading(
            meter_time=clock.parse(t.value, d.value, self.zone, near=now), system_time=now
        )

    async def read_clock(self) -> base.ClockReading:
        if self.settings.password is not None and base.SET_CLOCK in self.capabilities:
            try:
                return await self._programming(self._clock_r1)
            except NoProgrammingMode:
                pass  # a mode A/B meter: its readout (already read) has the clock
        values = self._values(await self.readout())
        t = values.get(obis_of(self.dialect.time_address))
        d = values.get(obis_of(self.dialect.date_address))
        if t is None or d is None:
            raise AccessDenied("the readout has no time and date; give the P1 password")
        now = self._readout_at or base.utcnow()
        return base.ClockReading(
            meter_time=clock.parse(t.value, d.value, self.zone, near=now), system_time=now
        )

    async def set_clock(self, value: datetime | None = None) -> base.ClockReading:
        if self.settings.password is None:
            raise AccessDenied("setting the clock needs the P1 password")
        if base.SET_CLOCK not in self.capabilities:
            raise NoProgrammingMode("a mode A/B meter has no programming mode")
        target = base.ensure_utc(value) if value is not None else None

        async def call():
            when, _summer = clock.to_local(target or base.utcnow(), self.zone)
            await self._w1(self.dialect.time_address, when.strftime(self.dialect.time_format))
            await self._w1(self.dialect.date_address, when.strftime(self.dialect.date_format))
            return await self._clock_r1()

        return await self._programming(call)

    # ----------------------------------------------------------------- profile and log (R5)

    async def _r5(self, address: str, start: datetime, end: datetime) -> list[codec.DataSet]:
        """The data sets of a profile or log read (``R5 P.01(from;to)``) in programming mode."""
        if self.settings.password is None:  # not a capability of this session: NotSupported
            raise NotSupported(f"reading {address} needs the P1 password")
        if not PROGRAMMING <= self.capabilities:
            raise NoProgrammingMode("a mode A/B meter has no programming mode")
        start, end = base.ensure_utc(start), base.ensure_utc(end)

        async def call():
            await self._send(profile.request(address, start, end, self.profile_dialect, self.zone))
            message = await self._receive()
            if message == codec.NAK:
                raise AccessDenied(f"{self.profile_dialect.command} {address} refused")
            sets = codec.parse_data(await self._data(message))
            if sets and sets[0].value.upper().startswith("ERROR"):
                raise AccessDenied(f"{address}: {sets[0].value}")
            return sets

        return await self._programming(call)

    async def read_load_profile(
        self, profile_obis: str, start: datetime, end: datetime
    ) -> base.ProfileBlock:
        address = profile_address(profile_obis)
        if address is None or address == self.profile_dialect.event_log:
            raise NotSupported(f"{profile_obis} is no IEC 62056-21 load profile (P.01..P.97)")
        data = profile.parse_profile(await self._r5(address, start, end), address, self.zone)
        channels = []
        for channel_address, unit in data.channels:
            _value, contract_unit = codec.to_contract("0", unit)
            channels.append(
                base.Channel(obis_of(channel_address) or channel_address, contract_unit)
            )
        rows = tuple(
            base.ProfileRow(
                at,
                tuple(
                    codec.to_contract(v, unit)[0] if v != "" else None
                    for v, (_a, unit) in zip(values, data.channels, strict=True)
                ),
                status or None,
            )
            for at, status, values in data.rows
        )
        return base.ProfileBlock(
            profile=obis_of(profile_obis) or profile_obis,
            channels=tuple(channels),
            rows=rows,
            period_seconds=data.period_s,
        )

    async def read_events(self, log: str, start: datetime, end: datetime) -> list[base.MeterEvent]:
        address = profile_address(log)
        if address != self.profile_dialect.event_log:
            raise NotSupported(f"{log} is not the event log ({self.profile_dialect.event_log})")
        entries = profile.parse_log(await self._r5(address, start, end), address, self.zone)
        code = obis_of(log) or log
        return [
            base.MeterEvent(
                timestamp=e.at,
                code=e.code,
                log=code,
                data=tuple(codec.to_contract(v, u)[0] for v, u in e.values),
            )
            for e in entries
        ]
