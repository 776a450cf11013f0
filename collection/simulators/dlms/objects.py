"""The COSEM object model of a simulated meter (logical device 1, management).

Objects are stateless singletons shared by all meters; values come from ``model.py`` and
the per-meter ``MeterState``.  ``OBJECTS`` maps the 6-byte logical name to the object.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from meters import obis as obis_codes

from ...protocols.dlms import axdr
from ...protocols.dlms.apdu import (
    DAR_OBJECT_UNAVAILABLE,
    DAR_OTHER_REASON,
    DAR_READ_WRITE_DENIED,
    DAR_SCOPE_OF_ACCESS_VIOLATED,
    DAR_TEMPORARY_FAILURE,
    DAR_TYPE_UNMATCHED,
)
from ...protocols.dlms.axdr import Value
from .. import model
from ..incidents import with_script
from . import supply, tariffs
from .apdu import SERVER_CONFORMANCE
from .comm_objects import communication_objects
from .config_objects import configuration_objects
from .cosem_base import UNIT, AccessError, CosemObject, Ctx, Data

__all__ = ["OBJECTS", "AccessError", "CosemObject", "Ctx", "Data", "object_list"]


class Register(CosemObject):
    class_id = 3
    attributes = 3
    methods = 1

    def __init__(self, obis: str, fn: Callable[[Ctx], bytes], scaler: int, unit: str) -> None:
        super().__init__(obis)
        self.fn = fn
        self.scaler_unit = axdr.enc_struct(axdr.enc_int8(scaler), axdr.enc_enum(UNIT[unit]))

    def value(self, ctx: Ctx, attr: int) -> bytes:
        if attr == 2:
            return self.fn(ctx)
        return self.scaler_unit


class MaxDemand(Register):
    class_id = 4
    attributes = 5

    def __init__(self, obis: str) -> None:
        super().__init__(obis, lambda ctx: b"", 0, "W")

    def value(self, ctx: Ctx, attr: int) -> bytes:
        if attr == 3:
            return self.scaler_unit
        if attr == 4:
            return axdr.enc_uint8(0)
        w, at = model.max_demand(ctx.meter.serial, ctx.now)
        return axdr.enc_uint32(w) if attr == 2 else axdr.enc_datetime(at)


# --- profile generic -----------------------------------------------------------------------


def capture_object(class_id: int, obis: str, attr: int, index: int = 0) -> bytes:
    return axdr.enc_struct(
        axdr.enc_uint16(class_id),
        axdr.enc_octets(obis_codes.to_bytes(obis)),
        axdr.enc_int8(attr),
        axdr.enc_uint16(index),
    )


class ProfileGeneric(CosemObject):
    class_id = 7
    version = 1
    attributes = 8
    methods = 4
    columns: list[tuple[int, str, int]] = []
    capture_period = 0

    # subclasses: configuration, depth, number of entries and rows
    def cols(self, ctx: Ctx) -> list[tuple[int, str, int]]:
        return self.columns

    def period(self, ctx: Ctx) -> int:
        return self.capture_period

    def depth(self, ctx: Ctx) -> int:
        """profile_entries (attr 8): how many entries the buffer holds."""
        raise NotImplementedError

    def count(self, ctx: Ctx) -> int:
        """entries_in_use (attr 7)."""
        raise NotImplementedError

    def rows_by_index(self, ctx: Ctx, first: int, last: int) -> list[tuple[bytes, ...]]:
        """Rows with 0-based buffer indexes ``first..last`` inclusive (0 = oldest kept)."""
        raise NotImplementedError

    def rows_by_time(self, ctx: Ctx, start: datetime, end: datetime) -> list[tuple[bytes, ...]]:
        raise NotImplementedError

    def _columns(self, ctx: Ctx, sel: Value) -> list[int]:
        columns = self.cols(ctx)
        wanted = sel.as_list()
        if not wanted:
            return list(range(len(columns)))
        out = []
        for w in wanted:
            m = w.as_list()
            if len(m) < 3:
                raise AccessError(DAR_TYPE_UNMATCHED)
            key = (m[0].as_int(), obis_codes.dotted(m[1].as_bytes()), m[2].as_int())
            if key not in columns:
                raise AccessError(DAR_SCOPE_OF_ACCESS_VIOLATED)
            out.append(columns.index(key))
        return out

    def buffer(self, ctx: Ctx, selector: int | None, sel: Value | None) -> bytes:
        width = len(self.cols(ctx))
        cols = list(range(width))
        if selector is None:
            n = self.count(ctx)
            rows = self.rows_by_index(ctx, 0, n - 1) if n else []
        elif selector == 1:
            try:
                m = sel.as_list() if sel else []
                if len(m) < 3:
                    raise AccessError(DAR_TYPE_UNMATCHED)
                restricting = m[0].as_list()
                if obis_codes.dotted(restricting[1].as_bytes()) != "0.0.1.0.0.255":
                    raise AccessError(DAR_SCOPE_OF_ACCESS_VIOLATED)
                start = axdr.decode_datetime(m[1].value)
                end = axdr.decode_datetime(m[2].value)
                if start is None or end is None:
                    raise AccessError(DAR_TYPE_UNMATCHED)
                if len(m) > 3:
                    cols = self._columns(ctx, m[3])
            except AccessError:
                raise
            except Exception:
                raise AccessError(DAR_TYPE_UNMATCHED) from None
            rows = self.rows_by_time(ctx, start, min(end, ctx.now))
        elif selector == 2:
            try:
                m = sel.as_list() if sel else []
                first, last = m[0].as_int(), m[1].as_int()
                fcol, lcol = (m[2].as_int(), m[3].as_int()) if len(m) >= 4 else (1, 0)
            except Exception:
                raise AccessError(DAR_TYPE_UNMATCHED) from None
            n = self.count(ctx)
            last = n if last == 0 or last > n else last
            first = max(first, 1)
            rows = self.rows_by_index(ctx, first - 1, last - 1) if first <= last else []
            lcol = width if lcol == 0 else min(lcol, width)
            cols = list(range(max(fcol, 1) - 1, lcol))
        else:
            raise AccessError(DAR_OTHER_REASON)
        if len(cols) == width:
            return axdr.enc_array([axdr.enc_struct(*r) for r in rows])
        return axdr.enc_array([axdr.enc_struct(*(r[c] for c in cols)) for r in rows])

    def get(self, ctx: Ctx, attr: int, selector: int | None, sel: Value | None) -> bytes:
        if attr == 2:
            return self.buffer(ctx, selector, sel)
        return super().get(ctx, attr, selector, sel)

    def value(self, ctx: Ctx, attr: int) -> bytes:
        if attr == 3:
            return axdr.enc_array([capture_object(c, o, a) for c, o, a in self.cols(ctx)])
        if attr == 4:
            return axdr.enc_uint32(self.period(ctx))
        if attr == 5:
            return axdr.enc_enum(1)  # fifo
        if attr == 6:
            return capture_object(0, "0.0.0.0.0.0", 0)
        if attr == 7:
            return axdr.enc_uint32(self.count(ctx))  # entries_in_use
        return axdr.enc_uint32(self.depth(ctx))  # 8 profile_entries


CLOCK_COLUMN = (8, "0.0.1.0.0.255", 2)
# what the load profile can capture: (class, OBIS, attr) -> (kind, channel)
_CAPTURABLE: dict[tuple[int, str, int], tuple[str, int]] = {CLOCK_COLUMN: ("clock", 0)}
for _ch, (_prof, _reg, _unit) in model.CHANNELS.items():
    _CAPTURABLE[(3, _prof, 2)] = ("interval", _ch)  # energy of the capture period
    _CAPTURABLE[(3, _reg, 2)] = ("register", _ch)  # register value at the period end
MAX_CAPTURE_PERIOD = 86400
_INTEGER_TAGS = (
    axdr.UINT32,
    axdr.UINT16,
    axdr.UINT8,
    axdr.INT32,
    axdr.INT16,
    axdr.INT8,
)


class LoadProfile(ProfileGeneric):
    """Load profile 1.0.99.1.0.255.

    Capture objects (attr 3) and capture period (attr 4) are writable.  A real meter clears
    its buffer when either changes; this model keeps deriving the whole (capped) history
    from ``model.py`` as if the new configuration had always been in force: period ``P``
    (a multiple of 900 s) yields entries stamped ``EPOCH + (j+1)*P`` whose interval columns
    hold the energy of that period and register columns the register value at its end.
    """

    columns = [CLOCK_COLUMN] + [(3, model.PROFILE_OBIS[c], 2) for c in (1, 2, 3, 4)]
    # IDIS style: the import and export registers captured at each period end.
    cumulative_columns = [CLOCK_COLUMN] + [(3, model.ENERGY_OBIS[c], 2) for c in (1, 2)]
    capture_period = model.INTERVAL_S
    writable = (3, 4)

    def cols(self, ctx: Ctx) -> list[tuple[int, str, int]]:
        configured = ctx.state.profile_columns
        if configured is not None:
            return list(configured)
        if ctx.meter.profile_style == "cumulative":
            return self.cumulative_columns
        return self.columns

    def period(self, ctx: Ctx) -> int:
        return ctx.state.profile_period or self.capture_period

    def depth(self, ctx: Ctx) -> int:
        return ctx.meter.profile_entries

    def _window(self, ctx: Ctx) -> tuple[int, int]:
        """Absolute period indexes ``(first kept, completed)`` of the buffer."""
        steps = self.period(ctx) // model.INTERVAL_S
        done = model.completed_intervals(ctx.now) // steps
        return max(0, done - self.depth(ctx)), done

    def count(self, ctx: Ctx) -> int:
        first, done = self._window(ctx)
        return done - first

    def _row(self, ctx: Ctx, j: int) -> tuple[bytes, ...]:
        """Entry of absolute period ``j``."""
        meter, state = ctx.meter, ctx.state
        steps = self.period(ctx) // model.INTERVAL_S
        a, b = j * steps, (j + 1) * steps
        out = []
        for key in self.cols(ctx):
            kind, ch = _CAPTURABLE[key]
            if kind == "clock":
                out.append(axdr.enc_datetime(model.interval_end(b - 1)))
            elif kind == "interval":
                if steps == 1:
                    out.append(axdr.enc_uint32(supply.interval_value(meter, state, ch, a)))
                else:
                    cum = supply.cumulative
                    out.append(axdr.enc_uint32(cum(meter, state, ch, b) - cum(meter, state, ch, a)))
            else:
                out.append(axdr.enc_uint32(supply.cumulative(meter, state, ch, b)))
        return tuple(out)

    def _rows(self, ctx: Ctx, first: int, last: int) -> list[tuple[bytes, ...]]:
        lo, done = self._window(ctx)
        return [self._row(ctx, j) for j in range(max(first, lo), min(last, done - 1) + 1)]

    def rows_by_index(self, ctx: Ctx, first: int, last: int) -> list[tuple[bytes, ...]]:
        lo, _done = self._window(ctx)
        return self._rows(ctx, lo + max(first, 0), lo + last)

    def rows_by_time(self, ctx: Ctx, start: datetime, end: datetime) -> list[tuple[bytes, ...]]:
        p = self.period(ctx)
        first = max(0, math.ceil((start - model.EPOCH).total_seconds() / p) - 1)
        last = math.floor((end - model.EPOCH).total_seconds() / p) - 1
        return self._rows(ctx, first, last)

    def set(self, ctx: Ctx, attr: int, v: Value, raw: bytes = b"") -> None:
        if attr == 3:
            ctx.state.profile_columns = _capture_objects(v)
        elif attr == 4:
            if v.tag not in _INTEGER_TAGS:
                raise AccessError(DAR_TYPE_UNMATCHED)
            period = v.as_int()
            if not (0 < period <= MAX_CAPTURE_PERIOD and period % model.INTERVAL_S == 0):
                raise AccessError(DAR_OTHER_REASON)  # the model has 15-minute granularity
            ctx.state.profile_period = period
        else:
            raise AccessError(DAR_READ_WRITE_DENIED)


def _capture_objects(v: Value) -> tuple[tuple[int, str, int], ...]:
    """Validate a capture_objects array; only clock + energy channels/registers capturable."""
    if v.tag != axdr.ARRAY:
        raise AccessError(DAR_TYPE_UNMATCHED)
    out: list[tuple[int, str, int]] = []
    try:
        for item in v.as_list():
            m = item.as_list()
            if item.tag != axdr.STRUCTURE or len(m) != 4 or len(m[1].as_bytes()) != 6:
                raise AccessError(DAR_TYPE_UNMATCHED)
            key = (m[0].as_int(), obis_codes.dotted(m[1].as_bytes()), m[2].as_int())
            if key not in _CAPTURABLE or m[3].as_int() != 0 or key in out:
                raise AccessError(DAR_OTHER_REASON)
            out.append(key)
    except AccessError:
        raise
    except Exception:
        raise AccessError(DAR_TYPE_UNMATCHED) from None
    if out.count(CLOCK_COLUMN) != 1 or len(out) < 2:
        raise AccessError(DAR_OTHER_REASON)  # a clock column and at least one value
    return tuple(out)


class EventLog(ProfileGeneric):
    columns = [CLOCK_COLUMN, (1, "0.0.96.11.0.255", 2)]

    def _rows(self, events: list[tuple[datetime, int]]) -> list[tuple[bytes, ...]]:
        return [(axdr.enc_datetime(t), axdr.enc_uint8(code)) for t, code in events]

    def depth(self, ctx: Ctx) -> int:
        return ctx.meter.event_log_entries

    def _kept(self, ctx: Ctx) -> list[tuple[datetime, int]]:
        return meter_events(ctx, model.EPOCH, ctx.now)[-self.depth(ctx) :]

    def _total(self, ctx: Ctx) -> int:
        scripted = len(ctx.meter.script.events(model.EPOCH, ctx.now)) if ctx.meter.script else 0
        return model.event_count(ctx.meter.serial, ctx.now) + scripted

    def count(self, ctx: Ctx) -> int:
        return min(self._total(ctx), self.depth(ctx))

    def rows_by_index(self, ctx: Ctx, first: int, last: int) -> list[tuple[bytes, ...]]:
        return self._rows(self._kept(ctx)[max(first, 0) : last + 1])

    def rows_by_time(self, ctx: Ctx, start: datetime, end: datetime) -> list[tuple[bytes, ...]]:
        evs = meter_events(ctx, start, end)
        if evs and self._total(ctx) > self.depth(ctx):
            oldest = self._kept(ctx)[0]
            evs = [e for e in evs if e >= oldest]
        return self._rows(evs)


def meter_events(ctx: Ctx, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """The event log: the model's events and the meter's scripted incidents, in time order."""
    return with_script(model.events(ctx.meter.serial, start, end), ctx.meter.script, start, end)


# --- disconnect control, activity calendar, push setup --------------------------------------


class DisconnectControl(CosemObject):
    """Class 70: output state, control state, control mode (writable); remote_disconnect and
    remote_reconnect as the control mode allows (supply.py)."""

    class_id = 70
    attributes = 4
    methods = 2
    writable = (4,)

    def value(self, ctx: Ctx, attr: int) -> bytes:
        if attr == 2:
            return axdr.enc_boolean(ctx.state.control_state == supply.CONNECTED)
        if attr == 3:
            return axdr.enc_enum(ctx.state.control_state)
        return axdr.enc_enum(ctx.state.control_mode)

    def set(self, ctx: Ctx, attr: int, v: Value, raw: bytes = b"") -> None:
        if attr != 4:
            raise AccessError(DAR_READ_WRITE_DENIED)
        if v.tag != axdr.ENUM:
            raise AccessError(DAR_TYPE_UNMATCHED)
        if v.as_int() not in supply.CONTROL_MODES:
            raise AccessError(DAR_OTHER_REASON)
        ctx.state.control_mode = v.as_int()

    def action(self, ctx: Ctx, method: int, param: Value | None) -> bytes | None:
        try:
            if method == 1:
                supply.remote_disconnect(ctx.state, ctx.now)
            elif method == 2:
                supply.remote_reconnect(ctx.state, ctx.now)
            else:
                raise AccessError(DAR_OBJECT_UNAVAILABLE)
        except supply.Refused:
            raise AccessError(DAR_OTHER_REASON) from None
        return None


_CAL_TYPES = {
    6: axdr.OCTET_STRING,
    7: axdr.ARRAY,
    8: axdr.ARRAY,
    9: axdr.ARRAY,
    10: axdr.OCTET_STRING,
}


class ActivityCalendar(CosemObject):
    """Class 20: the active calendar (2-5) decides which tariff register counts
    (``tariffs.py``); the passive one (6-9) waits for its activation time (10) or method 1."""

    class_id = 20
    attributes = 10
    methods = 1
    writable = (6, 7, 8, 9, 10)

    def value(self, ctx: Ctx, attr: int) -> bytes:
        tariffs.activate_when_due(ctx.meter, ctx.state, ctx.now)
        return ctx.state.calendar.get(attr) or tariffs.default_calendar(attr)

    def set(self, ctx: Ctx, attr: int, v: Value, raw: bytes = b"") -> None:
        if attr not in _CAL_TYPES:
            raise AccessError(DAR_READ_WRITE_DENIED)
        if v.tag != _CAL_TYPES[attr] or (attr == 10 and len(v.value) != 12):
            raise AccessError(DAR_TYPE_UNMATCHED)
        if attr == 10:
            try:
                axdr.decode_datetime(v.value)
            except Exception:
                raise AccessError(DAR_TYPE_UNMATCHED) from None
        ctx.state.calendar[attr] = raw

    def action(self, ctx: Ctx, method: int, param: Value | None) -> bytes | None:
        if method != 1:
            raise AccessError(DAR_OBJECT_UNAVAILABLE)
        tariffs.activate(ctx.meter, ctx.state, ctx.now)
        return None


PUSH_OBJECTS = [
    (1, "0.0.42.0.0.255", 2),  # logical device name
    (1, "0.0.97.98.0.255", 2),  # alarm register 1
    (8, "0.0.1.0.0.255", 2),  # clock
]


class PushSetup(CosemObject):
    class_id = 40
    attributes = 7
    methods = 1
    writable = (3,)

    def value(self, ctx: Ctx, attr: int) -> bytes:
        if attr == 2:
            return axdr.enc_array([capture_object(c, o, a) for c, o, a in PUSH_OBJECTS])
        if attr == 3:
            dest = (ctx.state.push_destination or "").encode()
            return axdr.enc_struct(axdr.enc_enum(0), axdr.enc_octets(dest), axdr.enc_enum(0))
        if attr == 4:
            return axdr.enc_array([])
        if attr == 5:
            return axdr.enc_uint16(0)
        if attr == 6:
            return axdr.enc_uint8(0)
        return axdr.enc_uint16(0)

    def set(self, ctx: Ctx, attr: int, v: Value, raw: bytes = b"") -> None:
        if attr != 3:
            raise AccessError(DAR_READ_WRITE_DENIED)
        try:
            dest = v.as_list()[1].as_bytes().decode("ascii")
            host, _, port = dest.rpartition(":")
            int(port)
        except Exception:
            raise AccessError(DAR_TYPE_UNMATCHED) from None
        if not host:
            raise AccessError(DAR_TYPE_UNMATCHED)
        ctx.state.push_destination = dest

    def action(self, ctx: Ctx, method: int, param: Value | None) -> bytes | None:
        if method != 1:
            raise AccessError(DAR_OBJECT_UNAVAILABLE)
        if ctx.push is None:
            raise AccessError(DAR_TEMPORARY_FAILURE)
        ctx.push()
        return None


class Association(CosemObject):
    """Association LN (class 15, version 1); method 1 is handled by the session."""

    class_id = 15
    version = 1
    attributes = 9
    methods = 6

    def value(self, ctx: Ctx, attr: int) -> bytes:
        if attr == 2:
            return object_list()
        if attr == 3:
            return axdr.enc_struct(axdr.enc_int8(ctx.client), axdr.enc_uint16(ctx.server_address))
        if attr in (4, 6):
            mech = {16: 0, 17: 1, 1: 5}.get(ctx.client, 0)
            last = (3 if ctx.client == 1 else 1) if attr == 4 else mech
            return axdr.enc_struct(
                axdr.enc_uint8(2),
                axdr.enc_uint8(16),
                axdr.enc_uint16(756),
                axdr.enc_uint8(5),
                axdr.enc_uint8(8),
                axdr.enc_uint8(1 if attr == 4 else 2),
                axdr.enc_uint8(last),
            )
        if attr == 5:
            return axdr.enc_struct(
                b"\x04\x18" + SERVER_CONFORMANCE.to_bytes(3, "big"),
                axdr.enc_uint16(ctx.meter.max_pdu_size),
                axdr.enc_uint16(ctx.meter.max_pdu_size),
                axdr.enc_uint8(6),
                axdr.enc_int8(0),
                axdr.enc_octets(b""),
            )
        if attr == 7:
            raise AccessError(DAR_READ_WRITE_DENIED)
        if attr == 8:
            return axdr.enc_enum(2)  # associated
        return axdr.enc_octets(obis_codes.to_bytes("0.0.43.0.0.255"))


# --- the object list -------------------------------------------------------------------------


def _u32_of(fn: Callable[[Ctx], int]) -> Callable[[Ctx], bytes]:
    return lambda ctx: axdr.enc_uint32(fn(ctx))


def _energy(ch: int) -> Callable[[Ctx], bytes]:
    return _u32_of(lambda ctx: supply.energy_register(ctx.meter, ctx.state, ch, ctx.now))


def _tariff(t: int) -> Callable[[Ctx], bytes]:
    return _u32_of(lambda ctx: tariffs.tariff_register(ctx.meter, ctx.state, t, ctx.now))


def _last_interval(ch: int) -> Callable[[Ctx], bytes]:
    def fn(ctx: Ctx) -> bytes:
        n = model.completed_intervals(ctx.now)
        value = supply.interval_value(ctx.meter, ctx.state, ch, n - 1) if n else 0
        return axdr.enc_uint32(value)

    return fn


def _inst(obis: str) -> Callable[[Ctx], bytes]:
    if obis == "1.0.1.7.0.255":
        return lambda ctx: axdr.enc_int32(supply.instantaneous(ctx.meter, ctx.state, obis, ctx.now))
    return lambda ctx: axdr.enc_uint16(supply.instantaneous(ctx.meter, ctx.state, obis, ctx.now))


def _last_event(ctx: Ctx) -> bytes:
    evs = meter_events(ctx, ctx.now - timedelta(days=400), ctx.now)
    return axdr.enc_uint8(evs[-1][1] if evs else 0)


def _build() -> dict[bytes, CosemObject]:
    objs: list[CosemObject] = [
        Association("0.0.40.0.0.255"),
        Data("0.0.42.0.0.255", lambda ctx: axdr.enc_octets(b"SIM" + ctx.meter.serial.encode())),
        Data("0.0.96.1.0.255", lambda ctx: axdr.enc_octets(ctx.meter.serial.encode())),
        Data("0.0.43.1.0.255", lambda ctx: axdr.enc_uint32(ctx.state.client_ic.get(1, 0))),
    ]
    for ch, (prof, reg, unit) in model.CHANNELS.items():
        objs.append(Register(reg, _energy(ch), 0, unit))
        objs.append(Register(prof, _last_interval(ch), 0, unit))
    for t, reg in model.TARIFF_OBIS.items():
        objs.append(Register(reg, _tariff(t), 0, "Wh"))
    objs.append(MaxDemand("1.0.1.6.0.255"))
    for obis, (scaler, unit) in model.INSTANTANEOUS.items():
        objs.append(Register(obis, _inst(obis), scaler, unit))
    objs += [
        LoadProfile("1.0.99.1.0.255"),
        EventLog("0.0.99.98.0.255"),
        Data("0.0.96.11.0.255", _last_event),
        Data("0.0.97.98.0.255", lambda ctx: axdr.enc_uint32(ctx.state.alarm)),
        DisconnectControl("0.0.96.3.10.255"),
        ActivityCalendar("0.0.13.0.0.255"),
        PushSetup("0.0.25.9.0.255"),
        *configuration_objects(),
        *communication_objects(),
    ]
    return {o.ln: o for o in objs}


OBJECTS: dict[bytes, CosemObject] = _build()

_OBJECT_LIST: bytes | None = None


def object_list() -> bytes:
    """Association attribute 2: every object with (simplified) access rights."""
    global _OBJECT_LIST
    if _OBJECT_LIST is None:
        items = []
        for o in OBJECTS.values():
            attrs = [
                axdr.enc_struct(
                    axdr.enc_int8(a), axdr.enc_enum(3 if a in o.writable else 1), axdr.enc_null()
                )
                for a in range(1, o.attributes + 1)
            ]
            methods = [
                axdr.enc_struct(axdr.enc_int8(m), axdr.enc_enum(1)) for m in range(1, o.methods + 1)
            ]
            items.append(
                axdr.enc_struct(
                    axdr.enc_uint16(o.class_id),
                    axdr.enc_uint8(o.version),
                    axdr.enc_octets(o.ln),
                    axdr.enc_struct(axdr.enc_array(attrs), axdr.enc_array(methods)),
                )
            )
        _OBJECT_LIST = axdr.enc_array(items)
    return _OBJECT_LIST


def now_utc() -> datetime:
    return datetime.now(UTC)
