"""Configuration commands in a meter session: the canonical section values of
:mod:`meters.configuration` turned into the contract's calls, and what the meter reads back
turned into the same form, so a command is confirmed exactly when the read-back is in step.

Pure: no Django, no database, no protocol package (only the contract).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

from collection.protocols import base
from meters import configuration as config

# command kind -> the section it writes (kinds.py names the kinds)
SECTION_OF = {
    "set_limiter": config.LIMITER,
    "write_tou": config.TOU,
    "configure_profile": config.PROFILE,
    "set_push_destination": config.PUSH,
    "set_clock_settings": config.CLOCK,
    "set_communication": config.COMMUNICATION,
    "set_alarm_filters": config.ALARMS,
}
# the contract capability each section is read and written with
CAPABILITY_OF = {
    config.LIMITER: base.LIMITER,
    config.TOU: base.WRITE_TOU,
    config.PROFILE: base.CONFIGURE_LOAD_PROFILE,
    config.PUSH: base.PUSH_SETUP,
    config.CLOCK: base.CLOCK_SETTINGS,
    config.COMMUNICATION: base.COMMUNICATION,
    config.ALARMS: base.ALARM_FILTERS,
}
MODE_CODES = {name: code for name, (_label, code) in config.CONNECTION_MODES.items()}
MODE_NAMES = {code: name for name, code in MODE_CODES.items()}
READABLE = tuple(CAPABILITY_OF)


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).replace(microsecond=0).isoformat() if value else None


def _number(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


# ------------------------------------------------------------------ canonical -> contract


def limiter_of(v: dict) -> base.Limiter:
    p = v.get("emergency_profile")
    emergency = v.get("emergency_threshold")
    return base.Limiter(
        threshold=Decimal(v["threshold"]),
        emergency_threshold=None if emergency is None else Decimal(emergency),
        min_over_seconds=v["min_over_s"],
        min_under_seconds=v["min_under_s"],
        emergency_profile=(
            base.EmergencyProfile(p["id"], _dt(p["activation"]), p["duration_s"]) if p else None
        ),
        emergency_groups=tuple(v.get("emergency_groups", ())),
        reconnect_count=v.get("reconnect_count"),
        lockout_seconds=v.get("lockout_s"),
    )


def _special_day(s: dict) -> base.SpecialDay:
    parts = [int(x) for x in s["date"].split("-")]
    year = parts[0] if len(parts) == 3 else None
    month, day = parts[-2:]
    return base.SpecialDay(s["index"], month, day, s["day_id"], year)


def calendar_of(v: dict) -> base.TouCalendar:
    return base.TouCalendar(
        name=v["name"],
        seasons=tuple(
            base.Season(
                s["name"],
                datetime.combine(date.fromisoformat(s["start"]), time(0), tzinfo=UTC),
                s["week"],
            )
            for s in v["seasons"]
        ),
        weeks=tuple(base.WeekProfile(w["name"], tuple(w["days"])) for w in v["weeks"]),
        days=tuple(
            base.DayProfile(
                d["id"],
                tuple(
                    base.DayAction(
                        time.fromisoformat(a["start"]), config.TARIFF_SCRIPT, a["tariff"]
                    )
                    for a in d["actions"]
                ),
            )
            for d in v["days"]
        ),
        special_days=tuple(_special_day(s) for s in v.get("special_days", ())),
    )


def _rule_of(r: dict | None) -> base.DstRule | None:
    return base.DstRule(r["month"], r["day"], r["weekday"], r["hour"], r["minute"]) if r else None


def clock_settings_of(v: dict) -> base.ClockSettings:
    return base.ClockSettings(
        time_zone_minutes=v["time_zone_minutes"],
        dst_enabled=v["dst_enabled"],
        dst_begin=_rule_of(v["dst_begin"]),
        dst_end=_rule_of(v["dst_end"]),
        dst_deviation_minutes=v["dst_deviation_minutes"],
    )


def communication_of(v: dict) -> base.CommunicationSettings:
    return base.CommunicationSettings(
        apn=v["apn"],
        connection_mode=MODE_CODES[v["connection_mode"]],
        listen_port=v["listen_port"],
        inactivity_timeout_s=v["inactivity_timeout_s"],
        use_dhcp=v["use_dhcp"],
        ip_address=v["ip_address"],
        subnet_mask=v["subnet_mask"],
        gateway=v["gateway"],
    )


def alarm_filters_of(v: dict) -> base.AlarmFilters:
    return base.AlarmFilters(filter_1=v["filter_1"], filter_2=v["filter_2"])


# ------------------------------------------------------------------ contract -> canonical


def limiter_value(lim: base.Limiter) -> dict:
    p = lim.emergency_profile
    return {
        "threshold": _number(lim.threshold),
        "emergency_threshold": _number(lim.emergency_threshold),
        "min_over_s": lim.min_over_seconds,
        "min_under_s": lim.min_under_seconds,
        "emergency_profile": (
            {"id": p.profile_id, "activation": _iso(p.activation), "duration_s": p.duration_seconds}
            if p
            else None
        ),
        "emergency_groups": sorted(set(lim.emergency_groups)),
        "reconnect_count": lim.reconnect_count,
        "lockout_s": lim.lockout_seconds,
        "monitored": lim.monitored,
        "active_threshold": _number(lim.active_threshold),
        "emergency_active": lim.emergency_active,
    }


def _calendar_value(cal: base.TouCalendar) -> dict:
    return {
        "name": cal.name,
        "seasons": sorted(
            (
                {
                    "name": s.name,
                    "start": s.start.astimezone(UTC).date().isoformat() if s.start else None,
                    "week": s.week,
                }
                for s in cal.seasons
            ),
            key=lambda s: s["start"] or "",
        ),
        "weeks": [{"name": w.name, "days": list(w.days)} for w in cal.weeks],
        "days": [
            {
                "id": d.day_id,
                "actions": [
                    {"start": a.start.strftime("%H:%M"), "tariff": a.selector} for a in d.actions
                ],
            }
            for d in cal.days
        ],
    }


def _special_value(s: base.SpecialDay) -> dict:
    when = f"{s.month:02d}-{s.day:02d}"
    return {
        "index": s.index,
        "date": f"{s.year:04d}-{when}" if s.year else when,
        "day_id": s.day_id,
    }


def tou_value(state: base.TouState) -> dict:
    return {
        "active": _calendar_value(state.active),
        "passive": _calendar_value(state.passive),
        "activate_at": _iso(state.activate_at),
        "special_days": sorted(
            (_special_value(s) for s in state.special_days), key=lambda s: s["index"]
        ),
    }


def _rule_value(r: base.DstRule | None) -> dict | None:
    if r is None:
        return None
    return {
        "month": r.month,
        "day": r.day,
        "weekday": r.weekday,
        "hour": r.hour,
        "minute": r.minute,
    }


def clock_value(s: base.ClockSettings) -> dict:
    return {
        "time_zone_minutes": s.time_zone_minutes,
        "dst_enabled": s.dst_enabled,
        "dst_begin": _rule_value(s.dst_begin),
        "dst_end": _rule_value(s.dst_end),
        "dst_deviation_minutes": s.dst_deviation_minutes,
    }


def profile_value(p: base.ProfileConfig) -> dict:
    return {"period_s": p.period_seconds, "channels": list(p.channels)}


def communication_value(c: base.CommunicationSettings) -> dict:
    return {
        # a mode the head-end has no name for is kept as its code
        "connection_mode": MODE_NAMES.get(c.connection_mode, str(c.connection_mode)),
        "apn": c.apn,
        "listen_port": c.listen_port,
        "inactivity_timeout_s": c.inactivity_timeout_s,
        "use_dhcp": c.use_dhcp,
        "ip_address": c.ip_address,
        "subnet_mask": c.subnet_mask,
        "gateway": c.gateway,
    }


def alarm_filters_value(f: base.AlarmFilters) -> dict:
    return {
        "filter_1": f.filter_1,
        "filter_2": f.filter_2,
        "register_1": f.register_1,
        "register_2": f.register_2,
    }


# ------------------------------------------------------------------ in a session


async def read_section(session: base.MeterSession, section: str) -> dict:
    """What the meter holds for `section`, in the canonical read-back form."""
    if section == config.LIMITER:
        return limiter_value(await session.read_limiter())
    if section == config.TOU:
        return tou_value(await session.read_tou())
    if section == config.PROFILE:
        return profile_value(await session.read_profile_config())
    if section == config.PUSH:
        return {"destination": (await session.read_push_setup()).destination}
    if section == config.CLOCK:
        return clock_value(await session.read_clock_settings())
    if section == config.COMMUNICATION:
        return communication_value(await session.read_communication())
    if section == config.ALARMS:
        return alarm_filters_value(await session.read_alarm_filters())
    raise ValueError(f"section {section} is not read from a meter")


async def write_section(session: base.MeterSession, section: str, value: dict) -> None:
    """Send `value` (canonical) to the meter; the caller reads it back."""
    if section == config.LIMITER:
        await session.write_limiter(limiter_of(value))
    elif section == config.TOU:
        await session.write_tou(calendar_of(value), activate_at=_dt(value["activate_at"]))
    elif section == config.PROFILE:
        await session.configure_load_profile(value["period_s"], list(value["channels"]))
    elif section == config.PUSH:
        await session.set_push_destination(value["destination"])
    elif section == config.CLOCK:
        await session.write_clock_settings(clock_settings_of(value))
    elif section == config.COMMUNICATION:
        await session.write_communication(communication_of(value))
    elif section == config.ALARMS:
        await session.write_alarm_filters(alarm_filters_of(value))
    else:
        raise ValueError(f"section {section} is not written to a meter")
