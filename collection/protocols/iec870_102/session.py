"""The IEC 870-5-102 meter session over asyncio (TCP or a pyserial URL).

One session: link reset, then ``C_AC_NA_2`` (183) with the password; integrated totals by
record and time range (``C_CI_NU_2`` 123 -> ``M_IT_TK_2`` 11 increments, as the load
profile; ``C_CI_NT_2`` 122 -> ``M_IT_TG_2`` 8 absolute, as registers and daily closures);
billing closures (``C_TA_VM_2`` 134 -> ``M_TA_VM_2`` 136, as the monthly billing profile);
events (``C_SP_NB_2`` 102 -> ``M_SP_TA_2`` 1); the clock (``C_TI_NA_2`` 103 -> ``M_TI_TA_2``
72); ``C_FS_NA_2`` (187) on close.

Every request is a SEND/CONFIRM (acknowledged), then class 2 polls fetch the answers. FCB
alternates on every FCV frame; a resend after a timeout or a bad answer keeps the FCB, so
the meter repeats its last answer instead of acting twice. After an error the session
drops its line: a late answer is never taken for the next one.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from meters.obis import normalise

from .. import base
from ..errors import (
    AccessDenied,
    AuthenticationFailed,
    FrameError,
    MalformedResponse,
    MeterTimeout,
    NotAssociated,
    NotSupported,
    ProtocolError,
)
from ..transport import Transport, open_transport
from . import codec as c
from .settings import Iec102Settings

# REE addresses of the integrated totals -> (profile channel OBIS, unit).
CHANNELS: dict[int, tuple[str, str]] = {
    1: ("1-0:1.29.0*255", "Wh"),  # AI, active import
    2: ("1-0:2.29.0*255", "Wh"),  # AE, active export
    3: ("1-0:5.29.0*255", "varh"),  # R1, reactive quadrant I
    4: ("1-0:6.29.0*255", "varh"),  # R2
    5: ("1-0:7.29.0*255", "varh"),  # R3
    6: ("1-0:8.29.0*255", "varh"),  # R4
}
# The same addresses' absolute totals, as energy registers.
REGISTERS: dict[str, int] = {
    "1-0:1.8.0*255": 1,
    "1-0:2.8.0*255": 2,
    "1-0:5.8.0*255": 3,
    "1-0:6.8.0*255": 4,
    "1-0:7.8.0*255": 5,
    "1-0:8.8.0*255": 6,
}
# Billing profiles: the monthly closures (C_TA_VM_2) and the daily ones (absolute totals of
# record 21), the DLMS codes of billing profiles, whose columns are the registers they capture.
MONTHLY_BILLING = "0-0:98.1.0*255"
# Contracts I, II, III (closure records 134..136) as billing profiles 0-0:98.1.0..2 (our
# mapping: value group E numbers the billing profile).
CONTRACT_PROFILES = {f"0-0:98.1.{n}*255": record for n, record in enumerate(c.CONTRACT_RECORDS)}
DAILY_BILLING = "0-0:98.2.0*255"
CLOSURE_UNITS = {"1.8": "Wh", "5.8": "varh", "8.8": "varh", "1.6": "W"}
# Event logs -> REE event records: 52 supply/quality, 53 clock, 54 parameters, 55 errors.
EVENT_LOGS = {f"0-0:99.98.{n}*255": record for n, record in enumerate(c.EVENT_RECORDS)}
NO_DATA_POLLS = 20  # class 2 polls answered "no data" before giving up on an answer


# The contract's row status is the profile status byte of IEC 62056 (DLMS "AMR profile
# status"), which the store turns into its quality flags.
STATUS_DATA_NOT_VALID = 0x04
STATUS_CLOCK_ADJUSTED = 0x20


def _normalised(obis: str) -> str:
    try:
        return normalise(obis)
    except ValueError:
        return obis


def row_status(quality: int) -> int:
    """The row status of the OR of a period's qualifiers: invalid or overflowed totals are
    data not valid, a time change in the period is a clock adjustment. CA (adjusted), MP and
    IN have no flag in the store and are not carried."""
    status = 0
    if quality & (c.Q_INVALID | c.Q_OVERFLOW):
        status |= STATUS_DATA_NOT_VALID
    if quality & c.Q_TIME_CHANGED:
        status |= STATUS_CLOCK_ADJUSTED
    return status


def quality_names(quality: int) -> list[str]:
    return [name for bit, name in c.QUALITY_NAMES.items() if quality & bit]


class Iec102Session(base.MeterSession):
    capabilities = frozenset(
        {
            base.READ_CLOCK,
            base.SET_CLOCK,
            base.READ_REGISTERS,
            base.READ_LOAD_PROFILE,
            base.READ_EVENTS,
        }
    )

    def __init__(self, settings: Iec102Settings, counters=None) -> None:
        self.settings = settings
        self.exchange_log = [] if settings.exchange_log else None
        self._transport: Transport | None = None
        self._fcb = True
        self._authenticated = False

    # ------------------------------------------------------------ line

    def _log(self, direction: str, data: bytes) -> None:
        if self.exchange_log is not None:
            self.exchange_log.append(base.Exchange(direction, data, datetime.now(UTC)))

    async def _read_frame(self, transport: Transport) -> c.Frame:
        deadline = asyncio.get_running_loop().time() + self.settings.timeout

        async def read(n: int) -> bytes:
            return await transport.read_exactly(n, deadline)

        data = await c.read_frame(read)
        self._log("rx", data)
        return c.decode(data)

    async def _transact(self, frame: bytes, *, logged: bytes | None = None) -> c.Frame:
        """Send `frame` and return the answer, resending the same bytes (same FCB) after a
        timeout or a bad frame; the session is dropped when the retries run out."""
        transport = self._transport
        if transport is None:
            raise NotAssociated("session is not open")
        attempt = 0
        while True:
            self._log("tx", logged if logged is not None else frame)
            try:
                await transport.write(frame)
                answer = await self._read_frame(transport)
            except (MeterTimeout, FrameError):
                if attempt >= self.settings.retries:
                    await self._drop()
                    raise
                attempt += 1
                continue
            if answer.kind != "ack" and answer.address != self.settings.link_address:
                await self._drop()
                raise MalformedResponse(f"answer from link address {answer.address}")
            if answer.kind != "ack" and answer.primary:
                await self._drop()
                raise MalformedResponse("a primary frame where an answer was due")
            if answer.kind == "fixed" and answer.function == c.FN_NACK:
                await self._drop()
                raise c.LinkNack("the meter's link layer refused the frame (NACK)")
            return answer

    def _next_fcb(self) -> bool:
        fcb, self._fcb = self._fcb, not self._fcb
        return fcb

    async def _send(self, asdu: c.Asdu, *, logged: bytes | None = None) -> None:
        """SEND/CONFIRM of one ASDU; the meter acknowledges."""
        control = c.primary_control(c.FN_SEND_CONFIRM, self._next_fcb())
        link = self.settings.link_address
        answer = await self._transact(
            c.variable(control, link, asdu.encode()),
            logged=None if logged is None else c.variable(control, link, logged),
        )
        if not (answer.kind == "ack" or (answer.kind == "fixed" and answer.function == c.FN_ACK)):
            await self._drop()
            raise MalformedResponse(f"no acknowledgement (control {answer.control:#04x})")

    async def _poll(self) -> c.Asdu:
        """Class 2 polls until the meter answers user data."""
        for _ in range(NO_DATA_POLLS):
            control = c.primary_control(c.FN_REQUEST_CLASS_2, self._next_fcb())
            answer = await self._transact(c.fixed(control, self.settings.link_address))
            if answer.kind == "variable" and answer.function == c.FN_USER_DATA:
                asdu = c.Asdu.decode(answer.asdu)
                if asdu.common_address != self.settings.measuring_point:
                    await self._drop()
                    raise MalformedResponse(f"answer for measuring point {asdu.common_address}")
                return asdu
            if answer.kind == "variable" or answer.function not in (c.FN_NO_DATA, c.FN_ACK):
                await self._drop()
                raise MalformedResponse(f"unexpected answer (control {answer.control:#04x})")
        raise MeterTimeout(f"no data after {NO_DATA_POLLS} class 2 polls")

    async def _request(
        self, asdu: c.Asdu, *, answer_type: int | None = None, logged: bytes | None = None
    ) -> c.Asdu:
        """Send an activation and return its confirmation (negative ones included), or the
        answer of type `answer_type` to a request."""
        await self._send(asdu, logged=logged)
        answer = await self._poll()
        if answer.type_id != (answer_type or asdu.type_id):
            if answer.cause == c.COT_NO_TYPE:
                raise NotSupported(f"the meter has no ASDU type {asdu.type_id}")
            await self._drop()
            raise MalformedResponse(f"type {answer.type_id} answered type {asdu.type_id}")
        return answer

    async def _drop(self) -> None:
        transport, self._transport = self._transport, None
        self._authenticated = False
        if transport is not None:
            await transport.close()

    def _asdu(self, type_id: int, cause: int, record: int = 0, objects=b"", count=1) -> c.Asdu:
        return c.Asdu(type_id, cause, self.settings.measuring_point, record, objects, count)

    # ------------------------------------------------------------ session

    async def open(self) -> None:
        s = self.settings
        self._transport = open_transport(s.url, baudrate=s.baudrate)
        await self._transport.open(s.timeout)
        try:
            answer = await self._transact(
                c.fixed(c.primary_control(c.FN_RESET_LINK, None), s.link_address)
            )
            if answer.kind == "variable":
                raise MalformedResponse("link reset answered with user data")
            self._fcb = True  # the first FCV frame after a reset has FCB set
            password = s.password.to_bytes(4, "little")
            confirm = await self._request(
                self._asdu(c.C_AC_NA_2, c.COT_ACTIVATION, objects=password),
                logged=self._asdu(c.C_AC_NA_2, c.COT_ACTIVATION, objects=b"\0" * 4).encode(),
            )
            if confirm.negative or confirm.cause != c.COT_ACTIVATION_CON:
                raise AuthenticationFailed("the meter refused the password")
            self._authenticated = True
        except BaseException:
            await self._drop()
            raise

    async def close(self) -> None:
        if self._transport is None:
            return
        try:
            if self._authenticated:
                await self._request(self._asdu(c.C_FS_NA_2, c.COT_ACTIVATION, count=0))
        except ProtocolError:
            pass  # the session ends either way
        finally:
            await self._drop()

    def _require(self) -> None:
        if self._transport is None or not self._authenticated:
            raise NotAssociated("session is not open")

    async def read_clock(self) -> base.ClockReading:
        self._require()
        answer = await self._request(
            self._asdu(c.C_TI_NA_2, c.COT_REQUEST, count=0), answer_type=c.M_TI_TA_2
        )
        return self._clock_of(answer)

    async def set_clock(self, value: datetime | None = None) -> base.ClockReading:
        """``C_CS_TA_2`` (181) with `value` (default: now) as the meter's wall time; the
        meter's confirmation, then its clock read back."""
        self._require()
        at = base.ensure_utc(value) if value is not None else datetime.now(UTC)
        summer = c.eu_summer(at)
        tag = c.encode_cp56(c.to_local(at, self.settings.utc_offset_minutes, summer), summer)
        confirm = await self._request(self._asdu(c.C_CS_TA_2, c.COT_ACTIVATION, objects=tag))
        if confirm.negative or confirm.cause != c.COT_ACTIVATION_CON:
            raise AccessDenied(f"the meter refused the clock set (cause {confirm.cause})")
        return await self.read_clock()

    def _clock_of(self, answer: c.Asdu) -> base.ClockReading:
        meter_time, summer = c.decode_cp56(answer.objects[:7], self.settings.utc_offset_minutes)
        return base.ClockReading(
            meter_time=meter_time, system_time=datetime.now(UTC), status=0x80 if summer else 0
        )

    def _range_tags(self, start: datetime, end: datetime) -> bytes:
        """CP40 tags of [start, end] as the meter's wall times (the SU flag by the EU rule)."""
        tags = b""
        for at in (base.ensure_utc(start), base.ensure_utc(end)):
            summer = c.eu_summer(at)
            tags += c.encode_cp40(c.to_local(at, self.settings.utc_offset_minutes, summer), summer)
        return tags

    async def _ranged(
        self, type_id: int, record: int, objects: bytes, answer_type: int, what: str
    ) -> list[c.Asdu]:
        """An activation by time range, then the answers (`answer_type`) up to its
        termination; [] when the meter has nothing in the range."""
        self._require()
        confirm = await self._request(self._asdu(type_id, c.COT_ACTIVATION, record, objects))
        if confirm.negative:
            if confirm.cause in (c.COT_NO_RECORD, c.COT_ACTIVATION_CON):
                return []  # nothing in the range
            raise MalformedResponse(f"{what} refused (cause {confirm.cause})")
        answers = []
        while True:
            asdu = await self._poll()
            if asdu.type_id == type_id and asdu.cause == c.COT_TERMINATION:
                return answers
            if asdu.type_id != answer_type:
                await self._drop()
                raise MalformedResponse(f"type {asdu.type_id} among {what}")
            answers.append(asdu)

    async def read_totals(
        self, record: int, start: datetime, end: datetime, *, increments: bool = True
    ) -> list[c.TotalsRecord]:
        """The periods of `record` whose end is in [start, end], addresses 1..6."""
        type_id = c.C_CI_NU_2 if increments else c.C_CI_NT_2
        answers = await self._ranged(
            type_id,
            record,
            bytes([1, len(CHANNELS)]) + self._range_tags(start, end),
            c.M_IT_TK_2 if increments else c.M_IT_TG_2,
            "integrated totals",
        )
        return [c.decode_totals(a, self.settings.utc_offset_minutes) for a in answers]

    async def read_closures(
        self, start: datetime, end: datetime, record: int = c.CONTRACT_RECORDS[0]
    ) -> list[c.Closure]:
        """The billing closures of a contract (record 134..136) whose period ends in
        [start, end] (``C_TA_VM_2`` 134 -> ``M_TA_VM_2`` 136), every tariff address."""
        answers = await self._ranged(
            c.C_TA_VM_2, record, self._range_tags(start, end), c.M_TA_VM_2, "billing closures"
        )
        offset = self.settings.utc_offset_minutes
        return [closure for a in answers for closure in c.decode_closures(a, offset)]

    async def read_points(self, record: int, start: datetime, end: datetime) -> list:
        """The events of `record` (52..55) in [start, end] (``C_SP_NB_2`` 102 -> ``M_SP_TA_2``
        1), each with its UTC time from the meter's wall time and SU flag."""
        answers = await self._ranged(
            c.C_SP_NB_2, record, self._range_tags(start, end), c.M_SP_TA_2, "events"
        )
        offset = self.settings.utc_offset_minutes
        return [p for a in answers for p in c.decode_points(a, offset)]

    async def read_events(self, log: str, start: datetime, end: datetime) -> list[base.MeterEvent]:
        """Events of the record a log stands for (``0-0:99.98.n`` -> record 52 + n): the
        code is ``SPA << 8 | SPQ`` (the REE event group and number), data ``(SPI,)``: 1 the
        start of a condition, 0 its end."""
        code = _normalised(log)
        record = EVENT_LOGS.get(code)
        if record is None:
            raise NotSupported(f"{log} is no IEC 870-5-102 event log")
        points = await self.read_points(record, start, end)
        return [
            base.MeterEvent(p.at, p.address << 8 | p.number, code, (int(p.start),))
            for p in points
            if start <= p.at <= end
        ]

    async def _closures_block(self, profile: str, start, end, record: int) -> base.ProfileBlock:
        """Monthly billing closures as the billing profile: one row per closure at its
        period's end, per tariff address ``e`` (20 total -> 0, 21..26 -> 1..6) the columns
        ``1.8.e`` (active import), ``5.8.e`` (inductive), ``8.8.e`` (capacitive) and
        ``1.6.e`` (maximum demand, W)."""
        closures = await self.read_closures(start, end, record)
        columns: dict[str, int] = {}
        by_end: dict[datetime, dict[str, tuple]] = {}
        for cl in closures:
            tariff = cl.address - c.TARIFF_TOTAL
            if not 0 <= tariff <= 6:
                continue
            row = by_end.setdefault(cl.end, {})
            for template, value, quality in (
                ("1-0:1.8.{}*255", cl.active.absolute, cl.active.quality),
                ("1-0:5.8.{}*255", cl.inductive.absolute, cl.inductive.quality),
                ("1-0:8.8.{}*255", cl.capacitive.absolute, cl.capacitive.quality),
                ("1-0:1.6.{}*255", cl.max_demand, cl.max_demand_quality),
            ):
                obis = template.format(tariff)
                columns.setdefault(obis, len(columns))
                row[obis] = (value, quality)
        # A value the meter marks invalid is no value (None), not a flag on its whole row; a
        # column no closure has a value for (a tariff's reactive energy...) is left out.
        valid = {
            obis: {
                at: v
                for at, row in by_end.items()
                if (v := row.get(obis)) and not v[1] & c.Q_INVALID
            }
            for obis in columns
        }
        kept = [obis for obis in columns if valid[obis]]
        channels = tuple(base.Channel(obis, CLOSURE_UNITS[obis[4:7]]) for obis in kept)
        rows = []
        for at in sorted(by_end):
            values = tuple(Decimal(valid[o][at][0]) if at in valid[o] else None for o in kept)
            quality = 0
            for obis in kept:
                quality |= valid[obis].get(at, (0, 0))[1]
            rows.append(base.ProfileRow(at, values, row_status(quality)))
        return base.ProfileBlock(profile, channels, tuple(rows), None)

    async def read_load_profile(
        self, profile: str, start: datetime, end: datetime
    ) -> base.ProfileBlock:
        """The load profile (increments of the settings' record); the monthly billing
        closures of contract I, II, III for ``0-0:98.1.0*255``, ``98.1.1``, ``98.1.2``; the
        daily closures (absolute totals of record 21 at each day's end) for
        ``0-0:98.2.0*255``."""
        code = _normalised(profile)
        if code in CONTRACT_PROFILES:
            return await self._closures_block(code, start, end, CONTRACT_PROFILES[code])
        daily = code == DAILY_BILLING
        record = c.RECORD_DAILY if daily else self.settings.profile_record
        periods = await self.read_totals(record, start, end, increments=not daily)
        table = {a: (obis, CHANNELS[a][1]) for obis, a in REGISTERS.items()} if daily else CHANNELS
        channels = tuple(base.Channel(obis, unit) for obis, unit in table.values())
        rows = []
        for period in periods:
            by_address = {t.address: t for t in period.totals}
            values: list[Decimal | None] = []
            quality = 0
            for address in CHANNELS:
                total = by_address.get(address)
                if total is None or total.quality & c.Q_INVALID:
                    values.append(None)
                else:
                    values.append(Decimal(total.value))
                quality |= total.quality if total is not None else c.Q_INVALID
            rows.append(base.ProfileRow(period.end, tuple(values), row_status(quality)))
        return base.ProfileBlock(
            profile=profile,
            channels=channels,
            rows=tuple(rows),
            period_seconds=c.RECORD_PERIOD_S[record],
        )

    async def read_registers(self, obis: list[str]) -> list[base.RegisterValue]:
        """Energy registers: the absolute totals (``C_CI_NT_2`` 122 -> ``M_IT_TG_2`` 8) at the
        end of the last period the meter closed, that end as capture time."""
        wanted = [normalise(code) for code in obis]
        totals: dict[int, c.Total] = {}
        end_at = None
        if any(code in REGISTERS for code in wanted):
            period = timedelta(seconds=c.RECORD_PERIOD_S[self.settings.profile_record])
            now = datetime.now(UTC)
            periods = await self.read_totals(
                self.settings.profile_record, now - 2 * period, now, increments=False
            )
            if periods:
                end_at = periods[-1].end
                totals = {t.address: t for t in periods[-1].totals}
        out = []
        for code in wanted:
            address = REGISTERS.get(code)
            total = totals.get(address) if address else None
            if total is None:
                error = "not an integrated total" if address is None else "no closed period"
                out.append(base.RegisterValue(obis=code, value=None, unit=None, error=error))
                continue
            invalid = bool(total.quality & c.Q_INVALID)
            out.append(
                base.RegisterValue(
                    obis=code,
                    value=None if invalid else Decimal(total.value),
                    unit=CHANNELS[address][1],
                    capture_time=end_at,
                    raw=total.value,
                    status=total.quality,
                    error="invalid" if invalid else None,
                )
            )
        return out
