"""The configuration side of the DLMS session: limiter (class 71) with the reconnect count and
lockout time, activity calendar read-back (class 20) and special days (class 11), the clock's
time zone and DST rules (class 8), and what a load profile captures (class 7).

Every write reads back what the meter now holds, so a command is confirmed by the meter's
own answer, never by the absence of an error.
"""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal

from meters import obis as obis_codes

from .. import base
from ..errors import MalformedResponse, ProtocolError
from . import axdr
from .cosem import (
    ACTIVITY_CALENDAR,
    ATTR_VALUE,
    CLOCK,
    LOAD_PROFILE,
    PROFILE_CAPTURE_OBJECTS,
    PROFILE_CAPTURE_PERIOD,
    STATUS_COLUMN_PREFIX,
    scale,
)
from .gurux_compat import CLASS_ACTIVITY_CALENDAR, CLASS_CLOCK, CLASS_DATA, CLASS_PROFILE_GENERIC

CLASS_SPECIAL_DAYS = 11
CLASS_LIMITER = 71
SPECIAL_DAYS = "0.0.11.0.0.255"
LIMITER = "0.0.17.0.0.255"
# Not in class 71: manufacturer-specific data objects (as the simulated meter has them).
RECONNECT_COUNT = "0.0.128.71.1.255"
LOCKOUT_TIME = "0.0.128.71.2.255"

# class 71 attributes
LIM_MONITORED, LIM_ACTIVE, LIM_NORMAL, LIM_EMERGENCY = 2, 3, 4, 5
LIM_MIN_OVER, LIM_MIN_UNDER, LIM_PROFILE, LIM_GROUPS, LIM_PROFILE_ACTIVE = 6, 7, 8, 9, 10
# class 8 attributes
CLOCK_TIME_ZONE, CLOCK_DST_BEGIN, CLOCK_DST_END, CLOCK_DST_DEVIATION, CLOCK_DST_ENABLED = (
    3,
    5,
    6,
    7,
    8,
)
# class 20: active attributes 2..5, passive 6..9, activation time 10
CALENDAR_ACTIVE = (2, 3, 4, 5)
CALENDAR_PASSIVE = (6, 7, 8, 9)
CALENDAR_ACTIVATION = 10

NOT_SPECIFIED_DATETIME = bytes.fromhex("ffffffffffffffffff800000")
LAST_DAY = 0xFE


def encode_dst_rule(rule: base.DstRule | None) -> bytes:
    """A yearly DST switch as a COSEM date-time pattern (year not specified)."""
    if rule is None:
        return NOT_SPECIFIED_DATETIME
    day = LAST_DAY if rule.day == -1 else rule.day
    weekday = 0xFF if rule.weekday is None else rule.weekday
    return bytes(
        (0xFF, 0xFF, rule.month, day, weekday, rule.hour, rule.minute, 0, 0, 0x80, 0, 0xFF)
    )


def decode_dst_rule(raw: object) -> base.DstRule | None:
    if not isinstance(raw, bytes) or len(raw) != axdr.DATETIME_LEN:
        raise MalformedResponse("DST begin/end is not a 12-byte date-time")
    if raw == NOT_SPECIFIED_DATETIME or raw[2] == 0xFF:
        return None
    month, day, weekday, hour, minute = raw[2], raw[3], raw[4], raw[5], raw[6]
    return base.DstRule(
        month=month,
        day=-1 if day == LAST_DAY else day,
        weekday=None if weekday == 0xFF else weekday,
        hour=0 if hour == 0xFF else hour,
        minute=0 if minute == 0xFF else minute,
    )


def encode_special_date(day: base.SpecialDay) -> bytes:
    year = 0xFFFF if day.year is None else day.year
    return year.to_bytes(2, "big") + bytes((day.month, day.day, 0xFF))


def _text(raw: object) -> str:
    if isinstance(raw, bytes):
        return raw.decode("latin-1")
    if isinstance(raw, str):
        return raw
    raise MalformedResponse("calendar name is not a string")


def _datetime_or_none(raw: object) -> datetime | None:
    if not isinstance(raw, bytes) or len(raw) != axdr.DATETIME_LEN:
        raise MalformedResponse("expected a 12-byte date-time")
    return axdr.decode_datetime(raw)


def decode_calendar(name, seasons, weeks, days) -> base.TouCalendar:
    """One calendar (active or passive) from its four attributes as decoded."""
    try:
        return base.TouCalendar(
            name=_text(name),
            seasons=tuple(
                base.Season(_text(s[0]), _datetime_or_none(s[1]), _text(s[2])) for s in seasons
            ),
            weeks=tuple(base.WeekProfile(_text(w[0]), tuple(w[1:8])) for w in weeks),
            days=tuple(
                base.DayProfile(
                    d[0],
                    tuple(
                        base.DayAction(
                            time(a[0][0] % 24, a[0][1] % 60, a[0][2] % 60),
                            obis_codes.normalise(a[1]),
                            a[2],
                        )
                        for a in d[1]
                    ),
                )
                for d in days
            ),
        )
    except (TypeError, IndexError, ValueError):
        raise MalformedResponse("activity calendar: unexpected structure") from None


def _special_days(entries: object) -> tuple[base.SpecialDay, ...]:
    if not isinstance(entries, list):
        raise MalformedResponse("special days: entries is not an array")
    out = []
    try:
        for index, date, day_id in entries:
            year = int.from_bytes(date[0:2], "big")
            out.append(
                base.SpecialDay(
                    index=index,
                    month=date[2],
                    day=date[3],
                    day_id=day_id,
                    year=None if year == 0xFFFF else year,
                )
            )
    except (TypeError, ValueError, IndexError):
        raise MalformedResponse("special days: unexpected entry") from None
    return tuple(out)


class DlmsConfiguration:
    """Mixin of the DLMS session (needs the association's GET/SET/ACTION and `_call`)."""

    # ------------------------------------------------------------ limiter
    async def read_limiter(self) -> base.Limiter:
        return await self._call(self._read_limiter)

    async def write_limiter(self, limiter: base.Limiter) -> base.Limiter:
        return await self._call(self._write_limiter, limiter)

    async def _monitored(self) -> tuple[int, str, int]:
        value = await self.get_value(CLASS_LIMITER, LIMITER, LIM_MONITORED)
        try:
            class_id, ln, attr = value
            return class_id, obis_codes.dotted(ln), attr
        except (TypeError, ValueError):
            raise MalformedResponse("limiter: monitored value is not a definition") from None

    async def _read_limiter(self) -> base.Limiter:
        class_id, ln, _attr = await self._monitored()
        scaler, _unit = await self._scaler_unit(class_id, ln)
        attrs = (LIM_ACTIVE, LIM_NORMAL, LIM_EMERGENCY, LIM_MIN_OVER, LIM_MIN_UNDER)
        attrs += (LIM_PROFILE, LIM_GROUPS, LIM_PROFILE_ACTIVE)
        items = [(CLASS_LIMITER, LIMITER, a) for a in attrs]
        items += [(CLASS_DATA, RECONNECT_COUNT, ATTR_VALUE), (CLASS_DATA, LOCKOUT_TIME, ATTR_VALUE)]
        raw = await self.get_many(items)
        for item in raw[: len(attrs)]:
            if isinstance(item, ProtocolError):
                raise item
        active, normal, emergency, over, under, profile, groups, on = (
            axdr.decode_all(r) for r in raw[: len(attrs)]
        )
        extra = [None if isinstance(r, ProtocolError) else axdr.decode_all(r) for r in raw[-2:]]
        try:
            ident, activation, duration = profile
            emergency_profile = base.EmergencyProfile(
                ident, _datetime_or_none(activation), duration
            )
            group_ids = tuple(int(g) for g in groups)
        except (TypeError, ValueError):
            raise MalformedResponse("limiter: unexpected emergency profile") from None
        return base.Limiter(
            threshold=scale(normal, scaler),
            emergency_threshold=scale(emergency, scaler),
            min_over_seconds=int(over),
            min_under_seconds=int(under),
            monitored=obis_codes.normalise(ln),
            active_threshold=scale(active, scaler),
            emergency_profile=emergency_profile,
            emergency_groups=group_ids,
            emergency_active=bool(on),
            reconnect_count=extra[0] if isinstance(extra[0], int) else None,
            lockout_seconds=extra[1] if isinstance(extra[1], int) else None,
        )

    async def _write_limiter(self, lim: base.Limiter) -> base.Limiter:
        class_id, ln, _attr = await self._monitored()
        scaler, _unit = await self._scaler_unit(class_id, ln)

        def raw(value: Decimal) -> bytes:
            scaled = Decimal(value).scaleb(-scaler)
            if scaled != scaled.to_integral_value():
                raise ValueError(f"threshold {value} is finer than the meter's scaler {scaler}")
            return axdr.enc_int32(int(scaled))

        put = self.set_value
        # The normal threshold goes last: the meter watches it as soon as it is written, so
        # the durations and the reconnect rules must already be the new ones.
        normal = raw(lim.threshold)
        if lim.emergency_threshold is not None:
            await put(CLASS_LIMITER, LIMITER, LIM_EMERGENCY, raw(lim.emergency_threshold))
        await put(CLASS_LIMITER, LIMITER, LIM_MIN_OVER, axdr.enc_uint32(lim.min_over_seconds))
        await put(CLASS_LIMITER, LIMITER, LIM_MIN_UNDER, axdr.enc_uint32(lim.min_under_seconds))
        if lim.emergency_profile is not None:
            p = lim.emergency_profile
            when = axdr.encode_datetime(p.activation) if p.activation else NOT_SPECIFIED_DATETIME
            value = axdr.enc_struct(
                axdr.enc_uint16(p.profile_id),
                axdr.enc_octets(when),
                axdr.enc_uint32(p.duration_seconds),
            )
            await put(CLASS_LIMITER, LIMITER, LIM_PROFILE, value)
            groups = axdr.enc_array([axdr.enc_uint16(g) for g in lim.emergency_groups])
            await put(CLASS_LIMITER, LIMITER, LIM_GROUPS, groups)
        if lim.reconnect_count is not None:
            await put(CLASS_DATA, RECONNECT_COUNT, ATTR_VALUE, axdr.enc_uint8(lim.reconnect_count))
        if lim.lockout_seconds is not None:
            await put(CLASS_DATA, LOCKOUT_TIME, ATTR_VALUE, axdr.enc_uint32(lim.lockout_seconds))
        await put(CLASS_LIMITER, LIMITER, LIM_NORMAL, normal)
        return await self._read_limiter()

    # ------------------------------------------------------------ calendar
    async def read_tou(self) -> base.TouState:
        return await self._call(self._read_tou)

    async def _read_tou(self) -> base.TouState:
        attrs = (*CALENDAR_ACTIVE, *CALENDAR_PASSIVE, CALENDAR_ACTIVATION)
        raw = await self.get_many([(CLASS_ACTIVITY_CALENDAR, ACTIVITY_CALENDAR, a) for a in attrs])
        for item in raw:
            if isinstance(item, ProtocolError):
                raise item
        values = [axdr.decode_all(r) for r in raw]
        special = await self.get_value(CLASS_SPECIAL_DAYS, SPECIAL_DAYS, ATTR_VALUE)
        return base.TouState(
            active=decode_calendar(*values[0:4]),
            passive=decode_calendar(*values[4:8]),
            activate_at=_datetime_or_none(values[8]),
            special_days=_special_days(special),
        )

    async def _write_special_days(self, days: tuple[base.SpecialDay, ...]) -> None:
        entries = axdr.enc_array(
            [
                axdr.enc_struct(
                    axdr.enc_uint16(d.index),
                    axdr.enc_octets(encode_special_date(d)),
                    axdr.enc_uint8(d.day_id),
                )
                for d in days
            ]
        )
        await self.set_value(CLASS_SPECIAL_DAYS, SPECIAL_DAYS, ATTR_VALUE, entries)

    # ------------------------------------------------------------ clock settings
    async def read_clock_settings(self) -> base.ClockSettings:
        return await self._call(self._read_clock_settings)

    async def write_clock_settings(self, settings: base.ClockSettings) -> base.ClockSettings:
        return await self._call(self._write_clock_settings, settings)

    async def _read_clock_settings(self) -> base.ClockSettings:
        attrs = (CLOCK_TIME_ZONE, CLOCK_DST_BEGIN, CLOCK_DST_END, CLOCK_DST_DEVIATION)
        raw = await self.get_many([(CLASS_CLOCK, CLOCK, a) for a in (*attrs, CLOCK_DST_ENABLED)])
        for item in raw:
            if isinstance(item, ProtocolError):
                raise item
        zone, begin, end, deviation, enabled = (axdr.decode_all(r) for r in raw)
        if not isinstance(zone, int) or not isinstance(deviation, int):
            raise MalformedResponse("clock: time zone or DST deviation is not an integer")
        return base.ClockSettings(
            time_zone_minutes=zone,
            dst_enabled=bool(enabled),
            dst_begin=decode_dst_rule(begin),
            dst_end=decode_dst_rule(end),
            dst_deviation_minutes=deviation,
        )

    async def _write_clock_settings(self, s: base.ClockSettings) -> base.ClockSettings:
        put = self.set_value
        await put(CLASS_CLOCK, CLOCK, CLOCK_TIME_ZONE, axdr.enc_int16(s.time_zone_minutes))
        await put(
            CLASS_CLOCK, CLOCK, CLOCK_DST_BEGIN, axdr.enc_octets(encode_dst_rule(s.dst_begin))
        )
        await put(CLASS_CLOCK, CLOCK, CLOCK_DST_END, axdr.enc_octets(encode_dst_rule(s.dst_end)))
        await put(CLASS_CLOCK, CLOCK, CLOCK_DST_DEVIATION, axdr.enc_int8(s.dst_deviation_minutes))
        await put(CLASS_CLOCK, CLOCK, CLOCK_DST_ENABLED, axdr.enc_boolean(s.dst_enabled))
        return await self._read_clock_settings()

    # ------------------------------------------------------------ load profile
    async def read_profile_config(self, profile: str | None = None) -> base.ProfileConfig:
        return await self._call(self._read_profile_config, profile)

    async def _read_profile_config(self, profile: str | None) -> base.ProfileConfig:
        ln = obis_codes.dotted(profile or LOAD_PROFILE)
        raw_objects, raw_period = await self.get_many(
            [
                (CLASS_PROFILE_GENERIC, ln, PROFILE_CAPTURE_OBJECTS),
                (CLASS_PROFILE_GENERIC, ln, PROFILE_CAPTURE_PERIOD),
            ]
        )
        for item in (raw_objects, raw_period):
            if isinstance(item, ProtocolError):
                raise item
        objects, period = axdr.decode_all(raw_objects), axdr.decode_all(raw_period)
        if not isinstance(objects, list) or not isinstance(period, int):
            raise MalformedResponse("profile: unexpected capture objects or period")
        channels = []
        try:
            for class_id, name, _attr, _index in objects:
                dotted = obis_codes.dotted(name)
                if class_id == CLASS_CLOCK or dotted.startswith(STATUS_COLUMN_PREFIX):
                    continue
                channels.append(obis_codes.normalise(dotted))
        except (TypeError, ValueError):
            raise MalformedResponse("profile: unexpected capture object") from None
        return base.ProfileConfig(obis_codes.normalise(ln), period, tuple(channels))
