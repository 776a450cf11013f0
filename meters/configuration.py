"""A meter's configuration, section by section: one canonical form, its checks, and when what a
meter holds is "in step" with what is wanted.

Pure (no Django): the desired configuration (``meters.DesiredConfiguration``), the command
queue's parameters and read-backs (``collection.commands``) and the pages all speak this form,
so "differs" means one thing everywhere. Every section is a plain JSON object:

* ``limiter``: ``threshold`` (W, decimal text), ``emergency_threshold`` (or null),
  ``min_over_s``, ``min_under_s``, ``emergency_profile`` (null or ``{"id", "activation"
  (ISO UTC or null), "duration_s"}``), ``emergency_groups``, ``reconnect_count`` and
  ``lockout_s`` (null: left as the meter has them).
* ``tou``: ``name``, ``seasons`` ``[{"name", "start" YYYY-MM-DD, "week"}]``, ``weeks``
  ``[{"name", "days" [7 day ids, Monday first]}]``, ``days`` ``[{"id", "actions" [{"start"
  HH:MM, "tariff"}]}]``, ``special_days`` ``[{"index", "date" MM-DD or YYYY-MM-DD,
  "day_id"}]``, ``activate_at`` (ISO UTC, null: at once).
* ``profile``: ``period_s`` (a multiple of 60 up to a day), ``channels`` (OBIS codes).
* ``push``: ``destination`` (``host:port``).
* ``clock``: ``time_zone_minutes``, ``dst_enabled``, ``dst_begin`` / ``dst_end`` (null or
  ``{"month", "day" (-1 last), "weekday" (1 Monday..7, null any), "hour", "minute"}``),
  ``dst_deviation_minutes``.
* ``communication``: ``apn`` (GPRS access point name), ``connection_mode`` (one of
  ``CONNECTION_MODES``), ``listen_port`` (the meter's TCP port), ``inactivity_timeout_s``,
  ``use_dhcp``, ``ip_address`` / ``subnet_mask`` / ``gateway`` (dotted IPv4; null with DHCP:
  the network assigns them and they are not compared).
* ``alarms``: ``filter_1`` / ``filter_2``, the masks of alarm registers 1 and 2 (whole
  numbers of 32 bits: a bit cleared is an alarm the meter neither registers nor pushes).
* ``clock_sync`` (head-end policy): ``max_drift_s``; in step while the meter's last measured
  drift is within it.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from . import obis as obis_codes

LIMITER, TOU, PROFILE, PUSH, CLOCK, COMMUNICATION, ALARMS, CLOCK_SYNC = (
    "limiter",
    "tou",
    "profile",
    "push",
    "clock",
    "communication",
    "alarms",
    "clock_sync",
)
SECTIONS = (LIMITER, TOU, PROFILE, PUSH, CLOCK, COMMUNICATION, ALARMS, CLOCK_SYNC)
LABELS = {
    LIMITER: "Load limiter",
    TOU: "TOU calendar and special days",
    PROFILE: "Load profile capture",
    PUSH: "Push destination",
    CLOCK: "Time zone and DST rules",
    COMMUNICATION: "Communication parameters",
    ALARMS: "Alarm filters",
    CLOCK_SYNC: "Clock sync policy",
}
# Who enforces each section once it is in place (shown on the pages).
ENFORCED_BY = {
    LIMITER: "meter",
    TOU: "meter",
    PROFILE: "meter",
    PUSH: "meter",
    CLOCK: "meter",
    COMMUNICATION: "meter",
    ALARMS: "meter",
    CLOCK_SYNC: "head-end",
}
# How the meter connects to the head-end (DLMS auto connect, class 29, its mode attribute):
# name -> (label, mode code).
CONNECTION_MODES = {
    "always_on": ("Always connected", 101),
    "window": ("Connected within the calling window", 102),
    "wake_up": ("Connects when woken up (call or SMS)", 104),
    "off": ("Never connects by itself", 0),
}
ALARM_MASK_MAX = 2**32 - 1
TARIFF_SCRIPT = "0-0:10.0.100*255"  # the tariffication script table the day actions run
MAX_PERIOD_S = 86400
MAX_ITEMS = 64


class ConfigError(ValueError):
    """A section value that does not fit: ``field`` names where (dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _obj(value, field: str, keys: dict) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(field, "must be an object")
    unknown = set(value) - set(keys)
    if unknown:
        raise ConfigError(field, f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    return value


def _int(value, field: str, low: int, high: int, *, null: bool = False) -> int | None:
    if value is None and null:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)
        else:
            raise ConfigError(field, "must be a whole number")
    if not low <= value <= high:
        raise ConfigError(field, f"must be between {low} and {high}")
    return value


def _decimal(value, field: str, *, null: bool = False) -> str | None:
    if value is None and null:
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ConfigError(field, "must be a number") from None
    if not number.is_finite() or number < 0 or number > Decimal(2**31 - 1):
        raise ConfigError(field, "must be between 0 and 2147483647")
    return format(number.normalize(), "f")


def _text(value, field: str, max_length: int = 32) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(field, "must be a non-empty text")
    value = value.strip()
    if len(value) > max_length or not value.isascii():
        raise ConfigError(field, f"at most {max_length} ASCII characters")
    return value


def _instant(value, field: str, *, null: bool = True) -> str | None:
    if value is None and null:
        return None
    if isinstance(value, datetime):
        when = value
    else:
        try:
            when = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(field, "must be a date and time (ISO 8601)") from None
    if when.tzinfo is None:
        raise ConfigError(field, "must name its time zone")
    return when.astimezone(UTC).replace(microsecond=0).isoformat()


def _list(value, field: str, max_items: int = MAX_ITEMS) -> list:
    if not isinstance(value, list):
        raise ConfigError(field, "must be a list")
    if len(value) > max_items:
        raise ConfigError(field, f"at most {max_items} entries")
    return value


def _clean_limiter(v) -> dict:
    keys = dict.fromkeys(
        (
            "threshold",
            "emergency_threshold",
            "min_over_s",
            "min_under_s",
            "emergency_profile",
            "emergency_groups",
            "reconnect_count",
            "lockout_s",
        )
    )
    v = _obj(v, LIMITER, keys)
    if "threshold" not in v:
        raise ConfigError("threshold", "is required")
    profile = v.get("emergency_profile")
    if profile is not None:
        p = _obj(profile, "emergency_profile", dict.fromkeys(("id", "activation", "duration_s")))
        profile = {
            "id": _int(p.get("id"), "emergency_profile.id", 0, 0xFFFF),
            "activation": _instant(p.get("activation"), "emergency_profile.activation"),
            "duration_s": _int(
                p.get("duration_s", 0), "emergency_profile.duration_s", 0, 2**32 - 1
            ),
        }
    groups = _list(v.get("emergency_groups", []), "emergency_groups")
    return {
        "threshold": _decimal(v["threshold"], "threshold"),
        "emergency_threshold": _decimal(
            v.get("emergency_threshold"), "emergency_threshold", null=True
        ),
        "min_over_s": _int(v.get("min_over_s", 0), "min_over_s", 0, 2**32 - 1),
        "min_under_s": _int(v.get("min_under_s", 0), "min_under_s", 0, 2**32 - 1),
        "emergency_profile": profile,
        "emergency_groups": sorted({_int(g, "emergency_groups", 0, 0xFFFF) for g in groups}),
        "reconnect_count": _int(v.get("reconnect_count"), "reconnect_count", 0, 255, null=True),
        "lockout_s": _int(v.get("lockout_s"), "lockout_s", 0, 2**32 - 1, null=True),
    }


_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_MMDD = re.compile(r"^(?:(\d{4})-)?(\d{1,2})-(\d{1,2})$")


def _day_date(value, field: str) -> str:
    m = _MMDD.match(str(value).strip()) if isinstance(value, str) else None
    if not m:
        raise ConfigError(field, "must be MM-DD (every year) or YYYY-MM-DD")
    year, month, day = (int(g) if g else None for g in m.groups())
    try:
        date(year or 2000, month, day)  # 2000: a leap year, so 02-29 is a date
    except ValueError:
        raise ConfigError(field, "is not a date") from None
    return f"{year:04d}-{month:02d}-{day:02d}" if year else f"{month:02d}-{day:02d}"


def _clean_tou(v) -> dict:
    keys = dict.fromkeys(("name", "seasons", "weeks", "days", "special_days", "activate_at"))
    v = _obj(v, TOU, keys)
    days = []
    for i, d in enumerate(_list(v.get("days"), "days")):
        f = f"days.{i}"
        d = _obj(d, f, dict.fromkeys(("id", "actions")))
        actions = []
        for j, a in enumerate(_list(d.get("actions"), f"{f}.actions")):
            a = _obj(a, f"{f}.actions.{j}", dict.fromkeys(("start", "tariff")))
            m = _HHMM.match(str(a.get("start", "")).strip())
            if not m:
                raise ConfigError(f"{f}.actions.{j}.start", "must be HH:MM")
            actions.append(
                {
                    "start": f"{int(m.group(1)):02d}:{m.group(2)}",
                    "tariff": _int(a.get("tariff"), f"{f}.actions.{j}.tariff", 1, 0xFFFF),
                }
            )
        if not actions:
            raise ConfigError(f"{f}.actions", "a day profile needs at least one switch")
        starts = [a["start"] for a in actions]
        if sorted(starts) != starts or len(set(starts)) != len(starts):
            raise ConfigError(f"{f}.actions", "switch times must rise")
        days.append({"id": _int(d.get("id"), f"{f}.id", 0, 255), "actions": actions})
    day_ids = [d["id"] for d in days]
    if not days or len(set(day_ids)) != len(day_ids):
        raise ConfigError("days", "one or more day profiles with distinct ids")
    weeks = []
    for i, w in enumerate(_list(v.get("weeks"), "weeks")):
        w = _obj(w, f"weeks.{i}", dict.fromkeys(("name", "days")))
        ids = _list(w.get("days"), f"weeks.{i}.days")
        if len(ids) != 7:
            raise ConfigError(f"weeks.{i}.days", "seven day ids, Monday first")
        ids = [_int(x, f"weeks.{i}.days", 0, 255) for x in ids]
        missing = sorted(set(ids) - set(day_ids))
        if missing:
            raise ConfigError(f"weeks.{i}.days", f"no day profile {missing[0]}")
        weeks.append({"name": _text(w.get("name"), f"weeks.{i}.name"), "days": ids})
    names = [w["name"] for w in weeks]
    if not weeks or len(set(names)) != len(names):
        raise ConfigError("weeks", "one or more week profiles with distinct names")
    seasons = []
    for i, s in enumerate(_list(v.get("seasons"), "seasons")):
        s = _obj(s, f"seasons.{i}", dict.fromkeys(("name", "start", "week")))
        start = _day_date(s.get("start"), f"seasons.{i}.start")
        if len(start) != 10:
            raise ConfigError(f"seasons.{i}.start", "must be YYYY-MM-DD")
        week = _text(s.get("week"), f"seasons.{i}.week")
        if week not in names:
            raise ConfigError(f"seasons.{i}.week", f"no week profile {week}")
        seasons.append(
            {"name": _text(s.get("name"), f"seasons.{i}.name"), "start": start, "week": week}
        )
    if not seasons:
        raise ConfigError("seasons", "at least one season")
    special = []
    for i, s in enumerate(_list(v.get("special_days", []), "special_days")):
        s = _obj(s, f"special_days.{i}", dict.fromkeys(("index", "date", "day_id")))
        day_id = _int(s.get("day_id"), f"special_days.{i}.day_id", 0, 255)
        if day_id not in day_ids:
            raise ConfigError(f"special_days.{i}.day_id", f"no day profile {day_id}")
        special.append(
            {
                "index": _int(s.get("index", i), f"special_days.{i}.index", 0, 0xFFFF),
                "date": _day_date(s.get("date"), f"special_days.{i}.date"),
                "day_id": day_id,
            }
        )
    indexes = [s["index"] for s in special]
    if len(set(indexes)) != len(indexes):
        raise ConfigError("special_days", "indexes must be distinct")
    return {
        "name": _text(v.get("name"), "name"),
        "seasons": sorted(seasons, key=lambda s: s["start"]),
        "weeks": weeks,
        "days": days,
        "special_days": sorted(special, key=lambda s: s["index"]),
        "activate_at": _instant(v.get("activate_at"), "activate_at"),
    }


def _clean_profile(v) -> dict:
    v = _obj(v, PROFILE, dict.fromkeys(("period_s", "channels")))
    period = _int(v.get("period_s"), "period_s", 60, MAX_PERIOD_S)
    if period % 60:
        raise ConfigError("period_s", "must be whole minutes")
    channels = []
    for i, c in enumerate(_list(v.get("channels"), "channels", 16)):
        try:
            channels.append(obis_codes.normalise(str(c)))
        except ValueError:
            raise ConfigError(f"channels.{i}", f"{c!r} is not an OBIS code") from None
    if not channels or len(set(channels)) != len(channels):
        raise ConfigError("channels", "one or more distinct OBIS codes")
    return {"period_s": period, "channels": channels}


def _clean_push(v) -> dict:
    v = _obj(v, PUSH, dict.fromkeys(("destination",)))
    destination = _text(v.get("destination"), "destination", 128)
    host, _, port = destination.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or " " in host:
        raise ConfigError("destination", "must be host:port")
    return {"destination": destination}


_APN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,62}[A-Za-z0-9])?$")


def _ipv4(value, field: str) -> str | None:
    if value is None or value == "":
        return None
    try:
        return str(ipaddress.IPv4Address(str(value).strip()))
    except ValueError:
        raise ConfigError(field, "must be a dotted IPv4 address") from None


def _clean_communication(v) -> dict:
    keys = (
        "apn",
        "connection_mode",
        "listen_port",
        "inactivity_timeout_s",
        "use_dhcp",
        "ip_address",
        "subnet_mask",
        "gateway",
    )
    v = _obj(v, COMMUNICATION, dict.fromkeys(keys))
    apn = v.get("apn")
    if not isinstance(apn, str) or not _APN.match(apn.strip()):
        raise ConfigError("apn", "letters, digits, dots and hyphens, at most 64")
    mode = v.get("connection_mode")
    if mode not in CONNECTION_MODES:
        raise ConfigError("connection_mode", f"one of {', '.join(CONNECTION_MODES)}")
    dhcp = v.get("use_dhcp", True)
    if not isinstance(dhcp, bool):
        raise ConfigError("use_dhcp", "must be true or false")
    addresses = {k: _ipv4(v.get(k), k) for k in ("ip_address", "subnet_mask", "gateway")}
    if dhcp and any(addresses.values()):
        field = next(k for k, a in addresses.items() if a)
        raise ConfigError(field, "is assigned by DHCP: leave it empty or turn DHCP off")
    if not dhcp:
        for k in ("ip_address", "subnet_mask"):
            if addresses[k] is None:
                raise ConfigError(k, "is required without DHCP")
        mask = int(ipaddress.IPv4Address(addresses["subnet_mask"]))
        if mask and (~mask & 0xFFFFFFFF) & ((~mask & 0xFFFFFFFF) + 1):
            raise ConfigError("subnet_mask", "is not a network mask (ones, then zeros)")
    return {
        "apn": apn.strip(),
        "connection_mode": mode,
        "listen_port": _int(v.get("listen_port", 4059), "listen_port", 1, 65535),
        "inactivity_timeout_s": _int(
            v.get("inactivity_timeout_s", 120), "inactivity_timeout_s", 0, 65535
        ),
        "use_dhcp": dhcp,
        **addresses,
    }


def _mask(value, field: str) -> int:
    if isinstance(value, str) and value.strip().lower().startswith("0x"):
        try:
            value = int(value.strip(), 16)
        except ValueError:
            raise ConfigError(field, "must be a whole number (or 0x hexadecimal)") from None
    return _int(value, field, 0, ALARM_MASK_MAX)


def _clean_alarms(v) -> dict:
    v = _obj(v, ALARMS, dict.fromkeys(("filter_1", "filter_2")))
    return {k: _mask(v.get(k, ALARM_MASK_MAX), k) for k in ("filter_1", "filter_2")}


def _rule(value, field: str) -> dict | None:
    if value is None:
        return None
    r = _obj(value, field, dict.fromkeys(("month", "day", "weekday", "hour", "minute")))
    day = _int(r.get("day"), f"{field}.day", -1, 31)
    if day == 0:
        raise ConfigError(f"{field}.day", "1..31, or -1 for the last")
    return {
        "month": _int(r.get("month"), f"{field}.month", 1, 12),
        "day": day,
        "weekday": _int(r.get("weekday"), f"{field}.weekday", 1, 7, null=True),
        "hour": _int(r.get("hour"), f"{field}.hour", 0, 23),
        "minute": _int(r.get("minute", 0), f"{field}.minute", 0, 59),
    }


def _clean_clock(v) -> dict:
    keys = dict.fromkeys(
        ("time_zone_minutes", "dst_enabled", "dst_begin", "dst_end", "dst_deviation_minutes")
    )
    v = _obj(v, CLOCK, keys)
    enabled = v.get("dst_enabled", False)
    if not isinstance(enabled, bool):
        raise ConfigError("dst_enabled", "must be true or false")
    begin, end = _rule(v.get("dst_begin"), "dst_begin"), _rule(v.get("dst_end"), "dst_end")
    if enabled and (begin is None or end is None):
        raise ConfigError("dst_begin", "daylight saving needs its begin and end")
    return {
        "time_zone_minutes": _int(v.get("time_zone_minutes", 0), "time_zone_minutes", -720, 840),
        "dst_enabled": enabled,
        "dst_begin": begin,
        "dst_end": end,
        "dst_deviation_minutes": _int(
            v.get("dst_deviation_minutes", 60), "dst_deviation_minutes", -120, 120
        ),
    }


def _clean_clock_sync(v) -> dict:
    v = _obj(v, CLOCK_SYNC, dict.fromkeys(("max_drift_s",)))
    return {"max_drift_s": _int(v.get("max_drift_s"), "max_drift_s", 1, 86400)}


_CLEAN = {
    LIMITER: _clean_limiter,
    TOU: _clean_tou,
    PROFILE: _clean_profile,
    PUSH: _clean_push,
    CLOCK: _clean_clock,
    COMMUNICATION: _clean_communication,
    ALARMS: _clean_alarms,
    CLOCK_SYNC: _clean_clock_sync,
}


def clean(section: str, value) -> dict:
    """The canonical form of one section's value (ConfigError when it does not fit)."""
    if section not in _CLEAN:
        raise ConfigError("section", f"unknown section {section!r}")
    return _CLEAN[section](value)


class Setting(NamedTuple):
    """One setting of a section: what is wanted, what the meter was last read to hold, and
    whether they differ (``compared`` False: the meter keeps its own, e.g. an address with
    DHCP or a limiter value left null, so it never differs)."""

    key: str
    desired: object
    actual: object
    differs: bool
    compared: bool = True


_MISSING = object()


def compare(section: str, desired: dict | None, actual: dict | None) -> list[Setting]:
    """``desired`` against ``actual`` setting by setting: the one comparison behind
    ``in_step``, the drift report and the pages. Nothing read (``actual`` None) or nothing
    wanted (``desired`` None) differs nowhere: ``in_step`` and the drift states say which."""
    rows = _compare(section, desired, actual) if desired is not None else []
    listed = {s.key for s in rows} | ({"active"} if section == TOU and rows else set())
    # What the meter reports beyond the settings (e.g. the alarms raised now): shown only.
    rows += [
        Setting(k, None, v, False, False) for k, v in (actual or {}).items() if k not in listed
    ]
    return rows


def _compare(section: str, desired: dict, actual: dict | None) -> list[Setting]:
    have = actual or {}
    read = actual is not None

    def row(key, want, got, same, compared=True):
        return Setting(key, want, got, read and compared and not same, compared)

    if section == CLOCK_SYNC:
        drift = have.get("drift_s")
        ok = drift is not None and abs(drift) <= desired["max_drift_s"]
        return [row("max_drift_s", desired["max_drift_s"], drift, ok)]
    if section == TOU:
        calendar = {k: v for k, v in desired.items() if k not in ("special_days", "activate_at")}
        active, passive = have.get("active"), have.get("passive")
        waiting = passive == calendar and have.get("activate_at") == desired["activate_at"]
        return [
            row("calendar", calendar, active, active == calendar or waiting),
            row("activate_at", desired["activate_at"], have.get("activate_at"), True, False),
            row(
                "special_days",
                desired["special_days"],
                have.get("special_days"),
                (have.get("special_days") == desired["special_days"]),
            ),
        ]
    if section == LIMITER:
        written = limiter_written(desired)
        return [row(k, v, have.get(k), have.get(k) == v, k in written) for k, v in desired.items()]
    if section == COMMUNICATION:
        return [
            row(k, v, have.get(k), have.get(k) == v, not (desired["use_dhcp"] and k in ADDRESSES))
            for k, v in desired.items()
        ]
    if section == ALARMS:  # the read-back also says which alarms are raised now
        return [row(k, v, have.get(k), have.get(k) == v) for k, v in desired.items()]
    keys = list(desired) + [k for k in have if k not in desired]
    return [
        row(
            k,
            desired.get(k),
            have.get(k),
            desired.get(k, _MISSING) == have.get(k, _MISSING),
        )
        for k in keys
    ]


def in_step(
    section: str, desired: dict, actual: dict | None, *, now: datetime | None = None
) -> bool:
    """Whether what a meter was last read to hold (``actual``, the read-back form of
    ``collection.commands``) is the ``desired`` canonical value. None: never read."""
    if actual is None:
        return False
    return not any(s.differs for s in compare(section, desired, actual))


ADDRESSES = ("ip_address", "subnet_mask", "gateway")


LEFT_AS_IS = ("emergency_threshold", "emergency_profile", "reconnect_count", "lockout_s")


def limiter_written(desired: dict) -> dict:
    """The limiter settings a command writes: null ones are left as the meter has them (and
    the emergency groups go with the emergency profile)."""
    out = {k: v for k, v in desired.items() if not (v is None and k in LEFT_AS_IS)}
    if desired.get("emergency_profile") is None:
        out.pop("emergency_groups", None)
    return out


# ------------------------------------------------------------------ the calendar as text

TOU_TEXT_HELP = (
    "One line each: 'name TEXT'; 'day ID HH:MM=TARIFF HH:MM=TARIFF ...'; "
    "'week NAME ID ID ID ID ID ID ID' (Monday first); 'season NAME YYYY-MM-DD WEEK'; "
    "'special MM-DD DAY_ID' (or YYYY-MM-DD). Lines starting with # are ignored."
)


def parse_tou_text(text: str) -> dict:
    """The calendar editor's text (see TOU_TEXT_HELP) -> a ``tou`` value (not yet cleaned)."""
    value: dict = {"name": "", "seasons": [], "weeks": [], "days": [], "special_days": []}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, *rest = line.split()
        field = f"line {number}"
        if word == "name" and len(rest) == 1:
            value["name"] = rest[0]
        elif word == "day" and len(rest) >= 2:
            actions = []
            for item in rest[1:]:
                start, sep, tariff = item.partition("=")
                if not sep:
                    raise ConfigError(field, f"{item!r}: write HH:MM=TARIFF")
                actions.append({"start": start, "tariff": tariff})
            value["days"].append({"id": rest[0], "actions": actions})
        elif word == "week" and len(rest) == 8:
            value["weeks"].append({"name": rest[0], "days": rest[1:]})
        elif word == "season" and len(rest) == 3:
            value["seasons"].append({"name": rest[0], "start": rest[1], "week": rest[2]})
        elif word == "special" and len(rest) == 2:
            index = len(value["special_days"])
            value["special_days"].append({"index": index, "date": rest[0], "day_id": rest[1]})
        else:
            raise ConfigError(field, f"cannot read {line!r}")
    return value


def tou_text(value: dict) -> str:
    """A ``tou`` value as the editor's text."""
    lines = [f"name {value['name']}"]
    for d in value["days"]:
        switches = " ".join(f"{a['start']}={a['tariff']}" for a in d["actions"])
        lines.append(f"day {d['id']} {switches}")
    lines += [f"week {w['name']} " + " ".join(map(str, w["days"])) for w in value["weeks"]]
    lines += [f"season {s['name']} {s['start']} {s['week']}" for s in value["seasons"]]
    lines += [f"special {s['date']} {s['day_id']}" for s in value.get("special_days", [])]
    return "\n".join(lines)
