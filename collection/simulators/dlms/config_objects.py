"""The simulated meter's configuration objects: clock (time zone, DST rules), special days
(class 11) and the load limiter (class 71) with its reconnect count and lockout time.

Every setting is kept per meter (``MeterState``) exactly as written, after the checks a meter
makes (type, range); a refused value changes nothing. The limiter's effect on the supply is
``limiter.py``.
"""

from __future__ import annotations

from datetime import datetime

from meters import obis as obis_codes

from ...protocols.dlms import axdr
from ...protocols.dlms.apdu import (
    DAR_OBJECT_UNAVAILABLE,
    DAR_OTHER_REASON,
    DAR_READ_WRITE_DENIED,
    DAR_TYPE_UNMATCHED,
)
from ...protocols.dlms.axdr import Value
from . import limiter, tariffs
from .cosem_base import AccessError, CosemObject, Ctx
from .errors import ApduError

INTEGER_TAGS = (axdr.UINT32, axdr.UINT16, axdr.UINT8, axdr.INT32, axdr.INT16, axdr.INT8)
NOT_SPECIFIED = bytes.fromhex("ffffffffffffffffff800000")
TIME_ZONE_RANGE = range(-720, 841)  # minutes (Blue Book: -720..840, 0x8000 not specified)
DST_DEVIATION_RANGE = range(-120, 121)


def _integer(v: Value, low: int, high: int) -> int:
    if v.tag not in INTEGER_TAGS:
        raise AccessError(DAR_TYPE_UNMATCHED)
    n = v.as_int()
    if not low <= n <= high:
        raise AccessError(DAR_OTHER_REASON)
    return n


def _date_time(v: Value) -> bytes:
    if v.tag not in (axdr.OCTET_STRING, axdr.DATE_TIME) or len(v.value) != 12:
        raise AccessError(DAR_TYPE_UNMATCHED)
    return bytes(v.value)


class Clock(CosemObject):
    """Clock (class 8): time, time zone, DST begin/end/deviation/enabled (all writable)."""

    class_id = 8
    attributes = 9
    methods = 6
    writable = (2, 3, 5, 6, 7, 8)

    def value(self, ctx: Ctx, attr: int) -> bytes:
        if attr == 2:
            return axdr.enc_datetime(ctx.meter_time())
        kept = ctx.state.clock_settings
        if attr == 3:
            return axdr.enc_int16(kept.get(3, 0))
        if attr == 4:
            return axdr.enc_uint8(0)
        if attr in (5, 6):
            return axdr.enc_octets(kept.get(attr, NOT_SPECIFIED))
        if attr == 7:
            return axdr.enc_int8(kept.get(7, 60))
        if attr == 8:
            return axdr.enc_boolean(bool(kept.get(8, False)))
        return axdr.enc_enum(1)  # clock base: internal crystal

    def set(self, ctx: Ctx, attr: int, v: Value, raw: bytes = b"") -> None:
        if attr == 2:
            self._set_time(ctx, v)
            return
        if attr == 3:
            value = _integer(v, TIME_ZONE_RANGE.start, TIME_ZONE_RANGE.stop - 1)
        elif attr in (5, 6):
            value = _date_time(v)
        elif attr == 7:
            value = _integer(v, DST_DEVIATION_RANGE.start, DST_DEVIATION_RANGE.stop - 1)
        elif attr == 8:
            if v.tag != axdr.BOOLEAN:
                raise AccessError(DAR_TYPE_UNMATCHED)
            value = bool(v.value)
        else:
            raise AccessError(DAR_READ_WRITE_DENIED)
        if ctx.state.clock_settings.get(attr) != value:  # local time decides the tariff
            tariffs.before_change(ctx.meter, ctx.state, ctx.now)
            ctx.state.clock_settings[attr] = value

    @staticmethod
    def _set_time(ctx: Ctx, v: Value) -> None:
        raw = _date_time(v)
        try:
            wanted = axdr.decode_datetime(raw)
        except ApduError:
            raise AccessError(DAR_TYPE_UNMATCHED) from None
        if wanted is None:  # a wildcard names no instant to set the clock to
            raise AccessError(DAR_TYPE_UNMATCHED)
        drift = ctx.meter.total_drift_s
        ctx.state.clock_offset_s = (wanted - ctx.now).total_seconds() - drift


class SpecialDaysTable(CosemObject):
    """Special days table (class 11): entries {index, date (5 bytes), day_id}; the whole
    table is writable, and method 1 inserts (or replaces) one entry, method 2 deletes one."""

    class_id = 11
    attributes = 2
    methods = 2
    writable = (2,)
    MAX_ENTRIES = 64

    def value(self, ctx: Ctx, attr: int) -> bytes:
        entries = sorted(ctx.state.special_days.items())
        return axdr.enc_array(
            [
                axdr.enc_struct(axdr.enc_uint16(i), axdr.enc_octets(date), axdr.enc_uint8(day))
                for i, (date, day) in entries
            ]
        )

    @staticmethod
    def _entry(item: Value) -> tuple[int, bytes, int]:
        m = item.as_list()
        if item.tag != axdr.STRUCTURE or len(m) != 3:
            raise AccessError(DAR_TYPE_UNMATCHED)
        date = m[1].as_bytes()
        if m[1].tag not in (axdr.OCTET_STRING, axdr.DATE) or len(date) != 5:
            raise AccessError(DAR_TYPE_UNMATCHED)
        month, day = date[2], date[3]
        if not (1 <= month <= 12 and 1 <= day <= 31):
            raise AccessError(DAR_OTHER_REASON)
        return _integer(m[0], 0, 0xFFFF), bytes(date), _integer(m[2], 0, 0xFF)

    def set(self, ctx: Ctx, attr: int, v: Value, raw: bytes = b"") -> None:
        if attr != 2:
            raise AccessError(DAR_READ_WRITE_DENIED)
        if v.tag != axdr.ARRAY:
            raise AccessError(DAR_TYPE_UNMATCHED)
        try:
            entries = [self._entry(item) for item in v.as_list()]
        except AccessError:
            raise
        except Exception:
            raise AccessError(DAR_TYPE_UNMATCHED) from None
        indexes = [i for i, _d, _day in entries]
        if len(set(indexes)) != len(indexes) or len(entries) > self.MAX_ENTRIES:
            raise AccessError(DAR_OTHER_REASON)
        self._change(ctx, {i: (date, day) for i, date, day in entries})

    def action(self, ctx: Ctx, method: int, param: Value | None) -> bytes | None:
        if method == 1 and param is not None:
            i, date, day = self._entry(param)
            self._change(ctx, {**ctx.state.special_days, i: (date, day)})
        elif method == 2 and param is not None:
            index = _integer(param, 0, 0xFFFF)
            self._change(ctx, {k: v for k, v in ctx.state.special_days.items() if k != index})
        else:
            raise AccessError(DAR_OBJECT_UNAVAILABLE)
        return None

    @staticmethod
    def _change(ctx: Ctx, days: dict[int, tuple[bytes, int]]) -> None:
        if days != ctx.state.special_days:  # a special day decides the tariff of its date
            tariffs.before_change(ctx.meter, ctx.state, ctx.now)
            ctx.state.special_days = days


DISCONNECT_SCRIPTS = obis_codes.to_bytes("0.0.10.0.106.255")  # disconnect control scripts


class Limiter(CosemObject):
    """Limiter (class 71) watching the active power import (W, double-long)."""

    class_id = 71
    attributes = 11
    writable = (4, 5, 6, 7, 8, 9)

    def value(self, ctx: Ctx, attr: int) -> bytes:
        lim = ctx.state.limiter
        if attr == 2:
            c, ln, a = limiter.MONITORED
            return axdr.enc_struct(
                axdr.enc_uint16(c), axdr.enc_octets(obis_codes.to_bytes(ln)), axdr.enc_int8(a)
            )
        if attr == 3:
            return axdr.enc_int32(limiter.threshold(lim, ctx.now) or 0)
        if attr == 4:
            return axdr.enc_int32(lim.normal or 0)
        if attr == 5:
            return axdr.enc_int32(lim.emergency or 0)
        if attr == 6:
            return axdr.enc_uint32(lim.min_over_s)
        if attr == 7:
            return axdr.enc_uint32(lim.min_under_s)
        if attr == 8:
            when = axdr.encode_datetime(lim.activation) if lim.activation else NOT_SPECIFIED
            return axdr.enc_struct(
                axdr.enc_uint16(lim.profile_id),
                axdr.enc_octets(when),
                axdr.enc_uint32(lim.duration_s),
            )
        if attr == 9:
            return axdr.enc_array([axdr.enc_uint16(g) for g in lim.groups])
        if attr == 10:
            return axdr.enc_boolean(limiter.emergency_active(lim, ctx.now))
        return axdr.enc_struct(  # 11 actions: over -> disconnect, under -> reconnect
            axdr.enc_struct(axdr.enc_octets(DISCONNECT_SCRIPTS), axdr.enc_uint16(1)),
            axdr.enc_struct(axdr.enc_octets(DISCONNECT_SCRIPTS), axdr.enc_uint16(2)),
        )

    def set(self, ctx: Ctx, attr: int, v: Value, raw: bytes = b"") -> None:
        lim = ctx.state.limiter
        if attr == 4:
            lim.normal = _integer(v, -(2**31), 2**31 - 1)
        elif attr == 5:
            lim.emergency = _integer(v, -(2**31), 2**31 - 1)
        elif attr == 6:
            lim.min_over_s = _integer(v, 0, 2**32 - 1)
        elif attr == 7:
            lim.min_under_s = _integer(v, 0, 2**32 - 1)
        elif attr == 8:
            lim.profile_id, lim.activation, lim.duration_s = _emergency_profile(v)
        elif attr == 9:
            if v.tag != axdr.ARRAY:
                raise AccessError(DAR_TYPE_UNMATCHED)
            lim.groups = tuple(_integer(g, 0, 0xFFFF) for g in v.as_list())
        else:
            raise AccessError(DAR_READ_WRITE_DENIED)
        limiter.settings_changed(ctx.state, ctx.now)


def _emergency_profile(v: Value) -> tuple[int, datetime | None, int]:
    if v.tag != axdr.STRUCTURE or len(v.as_list()) != 3:
        raise AccessError(DAR_TYPE_UNMATCHED)
    ident, when, duration = v.as_list()
    raw = _date_time(when)
    try:
        activation = axdr.decode_datetime(raw)
    except ApduError:
        raise AccessError(DAR_TYPE_UNMATCHED) from None
    return _integer(ident, 0, 0xFFFF), activation, _integer(duration, 0, 2**32 - 1)


class LimiterSetting(CosemObject):
    """A manufacturer-specific data object (class 1) holding one limiter setting the Blue
    Book's class 71 lacks: the reconnect count (unsigned) or the lockout time (seconds)."""

    class_id = 1
    attributes = 2
    writable = (2,)

    def __init__(self, obis: str, name: str, high: int) -> None:
        super().__init__(obis)
        self.name, self.high = name, high

    def value(self, ctx: Ctx, attr: int) -> bytes:
        n = getattr(ctx.state.limiter, self.name)
        return axdr.enc_uint8(n) if self.high <= 0xFF else axdr.enc_uint32(n)

    def set(self, ctx: Ctx, attr: int, v: Value, raw: bytes = b"") -> None:
        if attr != 2:
            raise AccessError(DAR_READ_WRITE_DENIED)
        setattr(ctx.state.limiter, self.name, _integer(v, 0, self.high))
        limiter.settings_changed(ctx.state, ctx.now)


RECONNECT_COUNT = "0.0.128.71.1.255"
LOCKOUT_TIME = "0.0.128.71.2.255"


def configuration_objects() -> list[CosemObject]:
    return [
        Clock("0.0.1.0.0.255"),
        SpecialDaysTable("0.0.11.0.0.255"),
        Limiter("0.0.17.0.0.255"),
        LimiterSetting(RECONNECT_COUNT, "reconnect_count", 0xFF),
        LimiterSetting(LOCKOUT_TIME, "lockout_s", 2**32 - 1),
    ]
