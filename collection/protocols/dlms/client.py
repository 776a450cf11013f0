"""The protocol-neutral contract over DLMS/COSEM: what the head-end reads and writes.

The association itself (transport, link, ciphering, xDLMS services) is
:mod:`.association`; the objects and value rules are :mod:`.cosem`; encoding is the shared
codec (:mod:`.axdr`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from meters import obis as obis_codes

from .. import base
from ..base import (
    Channel,
    ClockReading,
    InstantaneousValues,
    InvocationCounterStore,
    MeterEvent,
    MeterSession,
    ProfileBlock,
    ProfileRow,
    RegisterValue,
    RelayState,
    TouCalendar,
    ensure_utc,
    utcnow,
)
from ..errors import MalformedResponse, NotSupported, ProtocolError
from . import axdr
from .association import DlmsAssociation
from .cosem import (
    ACTIVATE_PASSIVE_CALENDAR_TIME,
    ACTIVE_POWER,
    ACTIVITY_CALENDAR,
    ANGLES,
    ATTR_CAPTURE_TIME,
    ATTR_SCALER_UNIT,
    ATTR_VALUE,
    CALENDAR_NAME_PASSIVE,
    CAPTURE_OBJECT_FIELDS,
    CLOCK,
    CONTROL_STATES,
    CURRENTS,
    DAY_PROFILE_TABLE_PASSIVE,
    DISCONNECT_CONTROL,
    DISCONNECT_CONTROL_MODE,
    DISCONNECT_CONTROL_STATE,
    DISCONNECT_OUTPUT_STATE,
    EVENT_LOG,
    FREQUENCY,
    LOAD_PROFILE,
    LOGICAL_NAME_LEN,
    METHOD_ACTIVATE_PASSIVE_CALENDAR,
    METHOD_REMOTE_DISCONNECT,
    METHOD_REMOTE_RECONNECT,
    NO_PARAMETER,
    PROFILE_BUFFER,
    PROFILE_CAPTURE_OBJECTS,
    PROFILE_CAPTURE_PERIOD,
    RANGE_DESCRIPTOR,
    SCALER_REGISTER_CLASSES,
    SEASON_PROFILE_PASSIVE,
    STATUS_COLUMN_PREFIX,
    VOLTAGES,
    WEEK_PROFILE_TABLE_PASSIVE,
    enc_capture_object,
    guess_class,
    scale,
)
from .gurux_compat import (
    CLASS_ACTIVITY_CALENDAR,
    CLASS_CLOCK,
    CLASS_DATA,
    CLASS_DISCONNECT_CONTROL,
    CLASS_EXTENDED_REGISTER,
    CLASS_PROFILE_GENERIC,
    CLASS_REGISTER,
)
from .settings import DlmsSettings


class DlmsClient(DlmsAssociation, MeterSession):
    """The protocol-neutral contract over one DLMS/COSEM association: clock, registers,
    load profiles, event logs, instantaneous values, relay, TOU and profile configuration.

    Not thread-safe; meant for one asyncio task at a time.
    """

    capabilities = base.ALL_CAPABILITIES - {
        base.LIMITER,
        base.PUSH_SETUP,
        base.CLOCK_SETTINGS,
        base.COMMUNICATION,
        base.ALARM_FILTERS,
    }

    def __init__(
        self,
        settings: DlmsSettings,
        counter_store: InvocationCounterStore | None = None,
    ) -> None:
        super().__init__(settings, counter_store)
        self._scalers: dict[tuple[int, str], tuple[int, str | None]] = {}
        self._captures: dict[str, list[tuple[int, str, int, int]]] = {}
        self._periods: dict[str, int | None] = {}

    # ------------------------------------------------------------ helpers
    async def _scaler_unit(self, class_id: int, ln: str) -> tuple[int, str | None]:
        key = (class_id, ln)
        cached = self._scalers.get(key)
        if cached is not None:
            return cached
        if class_id in SCALER_REGISTER_CLASSES:
            result = self._su(await self.get_raw(class_id, ln, ATTR_SCALER_UNIT), ln)
        else:
            result = (0, None)
        self._scalers[key] = result
        return result

    def _register_classes(self, name: str) -> list[int]:
        preferred = self.settings.register_classes.get(name) or guess_class(name)
        return [preferred] + [
            c for c in (CLASS_REGISTER, CLASS_EXTENDED_REGISTER, CLASS_DATA) if c != preferred
        ]

    @staticmethod
    def _su(raw: bytes, ln: str) -> tuple[int, str | None]:
        su = axdr.decode_all(raw)
        if not (isinstance(su, list) and len(su) == 2 and isinstance(su[0], int)):
            raise MalformedResponse(f"invalid scaler_unit for {ln}")
        return su[0], axdr.unit_name(su[1] if isinstance(su[1], int) else None)

    async def _read_register_group(
        self, names: list[str], classes: dict[str, int]
    ) -> dict[str, RegisterValue | ProtocolError]:
        """One GET(-with-list) round for the given registers and classes."""
        items: list[tuple[int, str, int]] = []
        slots: dict[str, dict[int, int]] = {}
        for name in names:
            cls, ln = classes[name], obis_codes.dotted(name)
            want = [ATTR_VALUE]
            if cls in (CLASS_REGISTER, CLASS_EXTENDED_REGISTER) and (cls, ln) not in self._scalers:
                want.append(ATTR_SCALER_UNIT)
            if cls == CLASS_EXTENDED_REGISTER:
                want.append(ATTR_CAPTURE_TIME)
            slots[name] = {}
            for attr in want:
                slots[name][attr] = len(items)
                items.append((cls, ln, attr))
        results = await self.get_many(items)
        out: dict[str, RegisterValue | ProtocolError] = {}
        for name in names:
            cls, ln = classes[name], obis_codes.dotted(name)
            got = {attr: results[i] for attr, i in slots[name].items()}
            error = next((r for r in got.values() if isinstance(r, ProtocolError)), None)
            if error is not None:
                out[name] = error
                continue
            if ATTR_SCALER_UNIT in got:
                self._scalers[(cls, ln)] = self._su(got[ATTR_SCALER_UNIT], ln)
            scaler, unit = self._scalers.get((cls, ln), (0, None))
            raw = axdr.decode_all(got[ATTR_VALUE])
            capture = None
            if ATTR_CAPTURE_TIME in got:
                ct = axdr.decode_all(got[ATTR_CAPTURE_TIME])
                if isinstance(ct, bytes) and len(ct) == axdr.DATETIME_LEN:
                    capture = axdr.decode_datetime(ct)
            out[name] = RegisterValue(
                obis=name,
                value=scale(raw, scaler),
                unit=unit,
                scaler=scaler,
                capture_time=capture,
                raw=raw if isinstance(raw, (int, str, bytes)) else None,
            )
        return out

    async def _read_registers(self, obis: list[str]) -> list[RegisterValue]:
        names = [obis_codes.normalise(o) for o in obis]
        unique = list(dict.fromkeys(names))
        candidates = {n: self._register_classes(n) for n in unique}
        done: dict[str, RegisterValue] = {}
        errors: dict[str, ProtocolError] = {}
        pending = unique
        while pending:
            classes = {n: candidates[n].pop(0) for n in pending}
            results = await self._read_register_group(pending, classes)
            retry = []
            for n in pending:
                r = results[n]
                if isinstance(r, RegisterValue):
                    done[n] = r
                    errors.pop(n, None)
                elif isinstance(r, NotSupported) and candidates[n]:
                    # object-undefined / class-inconsistent: try the next class
                    errors.setdefault(n, r)
                    retry.append(n)
                else:
                    errors[n] = errors.get(n) or r
            pending = retry
        out = []
        for n in names:
            if n in done:
                out.append(done[n])
            else:
                out.append(RegisterValue(obis=n, value=None, unit=None, error=str(errors[n])))
        return out

    async def _capture_objects(self, ln: str) -> list[tuple[int, str, int, int]]:
        cached = self._captures.get(ln)
        if cached is not None:
            return cached
        raw_co, raw_period = await self.get_many(
            [
                (CLASS_PROFILE_GENERIC, ln, PROFILE_CAPTURE_OBJECTS),
                (CLASS_PROFILE_GENERIC, ln, PROFILE_CAPTURE_PERIOD),
            ]
        )
        if isinstance(raw_co, ProtocolError):
            raise raw_co
        value = axdr.decode_all(raw_co)
        period = axdr.decode_all(raw_period) if isinstance(raw_period, bytes) else None
        self._periods[ln] = period if isinstance(period, int) and period > 0 else None
        out = []
        if not isinstance(value, list):
            raise MalformedResponse("capture_objects is not an array")
        for item in value:
            if not (
                isinstance(item, list)
                and len(item) == CAPTURE_OBJECT_FIELDS
                and isinstance(item[1], bytes)
                and len(item[1]) == LOGICAL_NAME_LEN
            ):
                raise MalformedResponse("invalid capture object definition")
            out.append((item[0], obis_codes.dotted(item[1]), item[2], item[3]))
        # scaler_unit of every register column, in one more round trip
        need = [
            (c, o, ATTR_SCALER_UNIT)
            for c, o, a, _ in out
            if a == ATTR_VALUE
            and c in (CLASS_REGISTER, CLASS_EXTENDED_REGISTER)
            and (c, o) not in self._scalers
        ]
        for (c, o, _a), raw in zip(need, await self.get_many(need), strict=True):
            self._scalers[(c, o)] = self._su(raw, o) if isinstance(raw, bytes) else (0, None)
        self._captures[ln] = out
        return out

    async def _read_buffer(
        self, ln: str, start: datetime, end: datetime
    ) -> tuple[list[tuple[int, str, int, int]], list]:
        captures = await self._capture_objects(ln)
        clock = next((c for c in captures if c[0] == CLASS_CLOCK), None)
        if clock is None:
            raise NotSupported(f"profile {ln} has no clock column for range access")
        access = bytes((RANGE_DESCRIPTOR,)) + axdr.enc_struct(
            enc_capture_object(CLASS_CLOCK, clock[1], clock[2]),
            axdr.enc_octets(axdr.encode_datetime(ensure_utc(start))),
            axdr.enc_octets(axdr.encode_datetime(ensure_utc(end))),
            axdr.enc_array([]),
        )
        rows = axdr.decode_all(
            await self.get_raw(CLASS_PROFILE_GENERIC, ln, PROFILE_BUFFER, access)
        )
        if not isinstance(rows, list):
            raise MalformedResponse("profile buffer is not an array")
        return captures, rows

    # ------------------------------------------------------------ contract
    async def read_clock(self) -> ClockReading:
        return await self._call(self._read_clock)

    async def _read_clock(self) -> ClockReading:
        raw = await self.get_value(CLASS_CLOCK, CLOCK, ATTR_VALUE)
        now = utcnow()
        if not isinstance(raw, bytes) or len(raw) != axdr.DATETIME_LEN:
            raise MalformedResponse("clock time is not a 12-byte date-time")
        return ClockReading(axdr.decode_datetime(raw), now, axdr.datetime_status(raw))

    async def set_clock(self, value: datetime | None = None) -> ClockReading:
        return await self._call(self._set_clock, value)

    async def _set_clock(self, value: datetime | None) -> ClockReading:
        when = ensure_utc(value) if value is not None else utcnow()
        await self.set_value(CLASS_CLOCK, CLOCK, ATTR_VALUE, axdr.enc_datetime(when))
        return await self._read_clock()

    async def read_registers(self, obis: list[str]) -> list[RegisterValue]:
        return await self._call(self._read_registers, list(obis))

    async def read_load_profile(self, profile: str, start: datetime, end: datetime) -> ProfileBlock:
        return await self._call(self._read_load_profile, profile, start, end)

    async def _read_load_profile(self, profile: str, start: datetime, end: datetime):
        ln = obis_codes.dotted(profile or LOAD_PROFILE)
        captures, rows = await self._read_buffer(ln, start, end)
        period = self._periods.get(ln)
        clock_idx = next(i for i, c in enumerate(captures) if c[0] == CLASS_CLOCK)
        status_idx = None
        value_cols: list[tuple[int, int]] = []  # (column, scaler)
        channels = []
        for i, (cls, cln, attr, _di) in enumerate(captures):
            if i == clock_idx:
                continue
            if cls == CLASS_DATA and cln.startswith(STATUS_COLUMN_PREFIX):
                status_idx = i
                continue
            scaler, unit = await self._scaler_unit(cls, cln) if attr == ATTR_VALUE else (0, None)
            channels.append(Channel(obis_codes.normalise(cln), unit, scaler, attr))
            value_cols.append((i, scaler))
        out = []
        width = len(captures)
        previous: datetime | None = None
        decode_dt = axdr.decode_datetime
        for row in rows:
            if not isinstance(row, list) or len(row) != width:
                raise MalformedResponse("profile row does not match capture objects")
            raw_ts = row[clock_idx]
            if isinstance(raw_ts, bytes):
                ts = decode_dt(raw_ts)
            elif raw_ts is None:
                ts = None
            else:
                raise MalformedResponse("profile timestamp is not a date-time")
            if ts is None:
                if previous is None or period is None:
                    raise MalformedResponse("profile row without timestamp")
                ts = previous + timedelta(seconds=period)
            previous = ts
            values = tuple(scale(row[i], s) for i, s in value_cols)
            status = row[status_idx] if status_idx is not None else None
            out.append(ProfileRow(ts, values, status if isinstance(status, int) else None))
        return ProfileBlock(obis_codes.normalise(ln), tuple(channels), tuple(out), period)

    async def read_events(self, log: str, start: datetime, end: datetime) -> list[MeterEvent]:
        return await self._call(self._read_events, log, start, end)

    async def _read_events(self, log: str, start: datetime, end: datetime):
        ln = obis_codes.dotted(log or EVENT_LOG)
        captures, rows = await self._read_buffer(ln, start, end)
        clock_idx = next(i for i, c in enumerate(captures) if c[0] == CLASS_CLOCK)
        other = [i for i in range(len(captures)) if i != clock_idx]
        if not other:
            raise MalformedResponse("event log without an event code column")
        name = obis_codes.normalise(ln)
        events = []
        for row in rows:
            if not isinstance(row, list) or len(row) != len(captures):
                raise MalformedResponse("event row does not match capture objects")
            raw_ts = row[clock_idx]
            ts = axdr.decode_datetime(raw_ts) if isinstance(raw_ts, bytes) else None
            code = row[other[0]]
            if ts is None or not isinstance(code, int):
                raise MalformedResponse("invalid event row")
            events.append(MeterEvent(ts, code, name, tuple(row[i] for i in other[1:])))
        return events

    async def read_instantaneous(self) -> InstantaneousValues:
        return await self._call(self._read_instantaneous)

    async def _read_instantaneous(self) -> InstantaneousValues:
        codes = [*VOLTAGES, *CURRENTS, *ANGLES, FREQUENCY, ACTIVE_POWER]
        values = [r.value for r in await self._read_registers(codes)]
        return InstantaneousValues(
            utcnow(),
            tuple(values[0:3]),
            tuple(values[3:6]),
            tuple(values[6:9]),
            values[9],
            values[10],
        )

    async def relay_state(self) -> RelayState:
        return await self._call(self._relay_state)

    async def _relay_state(self) -> RelayState:
        output = await self.get_value(
            CLASS_DISCONNECT_CONTROL, DISCONNECT_CONTROL, DISCONNECT_OUTPUT_STATE
        )
        control = await self.get_value(
            CLASS_DISCONNECT_CONTROL, DISCONNECT_CONTROL, DISCONNECT_CONTROL_STATE
        )
        return RelayState(bool(output), CONTROL_STATES.get(control, "unknown"))

    async def connect(self) -> RelayState:
        return await self._call(self._relay_action, METHOD_REMOTE_RECONNECT)

    async def disconnect(self) -> RelayState:
        return await self._call(self._relay_action, METHOD_REMOTE_DISCONNECT)

    async def _relay_action(self, method: int) -> RelayState:
        await self._action(
            CLASS_DISCONNECT_CONTROL, DISCONNECT_CONTROL, method, axdr.enc_int8(NO_PARAMETER)
        )
        return await self._relay_state()

    async def ready_for_reconnection(self) -> RelayState:
        return await self._call(self._ready_for_reconnection)

    async def _ready_for_reconnection(self) -> RelayState:
        """Class 70: in control modes 1, 3, 5 remote_reconnect only arms a disconnected
        meter; in 2, 4, 6 it would connect, so the mode is lowered to its arming twin for
        the one call and put back. Mode 0 (always connected) cannot."""
        state = await self._relay_state()
        if state.control_state == "ready_for_reconnection":
            return state
        dc = (CLASS_DISCONNECT_CONTROL, DISCONNECT_CONTROL)
        mode = await self.get_value(*dc, DISCONNECT_CONTROL_MODE)
        if not isinstance(mode, int) or not 1 <= mode <= 6:
            raise NotSupported(f"disconnect control mode {mode!r} cannot arm a reconnection")
        if state.control_state != "disconnected":
            await self._action(*dc, METHOD_REMOTE_DISCONNECT, axdr.enc_int8(NO_PARAMETER))
        arming = mode if mode % 2 else mode - 1
        if arming != mode:
            await self.set_value(*dc, DISCONNECT_CONTROL_MODE, axdr.enc_enum(arming))
        try:
            await self._action(*dc, METHOD_REMOTE_RECONNECT, axdr.enc_int8(NO_PARAMETER))
        finally:
            if arming != mode:
                await self.set_value(*dc, DISCONNECT_CONTROL_MODE, axdr.enc_enum(mode))
        return await self._relay_state()

    async def write_tou(self, calendar: TouCalendar, activate_at: datetime | None = None) -> None:
        return await self._call(self._write_tou, calendar, activate_at)

    async def _write_tou(self, cal: TouCalendar, activate_at: datetime | None) -> None:
        e = axdr
        ln = ACTIVITY_CALENDAR
        cls = CLASS_ACTIVITY_CALENDAR
        seasons = e.enc_array(
            [
                e.enc_struct(
                    e.enc_octets(s.name.encode()),
                    e.enc_octets(e.encode_datetime(ensure_utc(s.start))),
                    e.enc_octets(s.week.encode()),
                )
                for s in cal.seasons
            ]
        )
        weeks = e.enc_array(
            [
                e.enc_struct(e.enc_octets(w.name.encode()), *(e.enc_uint8(d) for d in w.days))
                for w in cal.weeks
            ]
        )
        days = e.enc_array(
            [
                e.enc_struct(
                    e.enc_uint8(d.day_id),
                    e.enc_array(
                        [
                            e.enc_struct(
                                e.enc_octets(
                                    bytes((a.start.hour, a.start.minute, a.start.second, 0))
                                ),
                                e.enc_octets(obis_codes.to_bytes(a.script)),
                                e.enc_uint16(a.selector),
                            )
                            for a in d.actions
                        ]
                    ),
                )
                for d in cal.days
            ]
        )
        await self.set_value(cls, ln, CALENDAR_NAME_PASSIVE, e.enc_octets(cal.name.encode()))
        await self.set_value(cls, ln, SEASON_PROFILE_PASSIVE, seasons)
        await self.set_value(cls, ln, WEEK_PROFILE_TABLE_PASSIVE, weeks)
        await self.set_value(cls, ln, DAY_PROFILE_TABLE_PASSIVE, days)
        if activate_at is None:
            await self._action(cls, ln, METHOD_ACTIVATE_PASSIVE_CALENDAR, e.enc_int8(NO_PARAMETER))
        else:
            await self.set_value(
                cls, ln, ACTIVATE_PASSIVE_CALENDAR_TIME, e.enc_datetime(ensure_utc(activate_at))
            )

    async def configure_load_profile(
        self, period_seconds: int, channels: list[str], profile: str | None = None
    ) -> None:
        return await self._call(self._configure_load_profile, period_seconds, channels, profile)

    async def _configure_load_profile(self, period, channels, profile) -> None:
        ln = obis_codes.dotted(profile or LOAD_PROFILE)
        classes = self.settings.register_classes
        objects = [enc_capture_object(CLASS_CLOCK, CLOCK, ATTR_VALUE)] + [
            enc_capture_object(classes.get(obis_codes.normalise(c), CLASS_REGISTER), c, ATTR_VALUE)
            for c in channels
        ]
        await self.set_value(
            CLASS_PROFILE_GENERIC, ln, PROFILE_CAPTURE_OBJECTS, axdr.enc_array(objects)
        )
        await self.set_value(
            CLASS_PROFILE_GENERIC, ln, PROFILE_CAPTURE_PERIOD, axdr.enc_uint32(int(period))
        )
        self._captures.pop(ln, None)


async def read_meter(settings: DlmsSettings, **kwargs) -> DlmsClient:
    """Convenience: an opened client (caller closes it)."""
    client = DlmsClient(settings, **kwargs)
    await client.open()
    return client


__all__ = ["DlmsClient", "DlmsSettings", "read_meter"]
