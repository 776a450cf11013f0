"""How the system shows times, energy, power and money to people: one module for every page,
PDF and receipt (the template filters in `amisite/display_tags.py` call these).

- Times: in the utility's zone (`AMI_TIME_ZONE`, Django's current time zone) with the zone
  named: `2026-06-01 14:00 CEST`. ISO strings (as stored in JSON) are accepted.
- Energy: Wh, kWh, varh, ... scaled to k/M with three decimals and thousands separators:
  `871.234 kWh`, `8.712 MWh`, `1,234.568 MWh`. Power likewise (`W` -> `kW`).
- Prepaid energy (vending) in kWh to the tenth a token carries: `1,173.9 kWh`.
- Money: two decimals, thousands separators, rounded half up: `1,234.50`.
Nothing here rounds stored values: display only.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.utils import timezone
from django.utils.dateparse import parse_datetime

EMPTY = "–"
# Base units that take k/M prefixes when shown (energy and power, active and reactive).
SCALABLE = {"Wh", "varh", "VAh", "W", "var", "VA"}
PREFIXED = {f"{p}{u}": (u, f) for u in SCALABLE for p, f in (("k", 1000), ("M", 1000000))}
PLACES = {"V": 1, "A": 2, "Hz": 2, "°": 1, "deg": 1, "s": 1, "%": 1}


def as_decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def grouped(value: Decimal, places: int) -> str:
    """`value` rounded half up to `places` decimals with thousands separators."""
    step = Decimal(1).scaleb(-places)
    return f"{value.quantize(step, rounding=ROUND_HALF_UP):,.{places}f}"


def when(value, *, seconds: bool = False) -> str:
    """A moment in the utility's zone, with the zone: `2026-06-01 14:00 CEST`."""
    if value in (None, ""):
        return EMPTY
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None:
            return value
        value = parsed
    if isinstance(value, datetime):
        if timezone.is_naive(value):
            value = timezone.make_aware(value, timezone.get_current_timezone())
        local = timezone.localtime(value)
        return local.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def quantity(value, unit: str | None = "") -> str:
    """A measured value with its unit, scaled and grouped: `8.712 MWh`, `230.1 V`."""
    number = as_decimal(value)
    if number is None:
        return EMPTY
    unit = unit or ""
    if unit in PREFIXED:
        base, factor = PREFIXED[unit]
        number, unit = number * factor, base
    if unit in SCALABLE:
        if abs(number) >= 1000000:
            return f"{grouped(number / 1000000, 3)} M{unit}"
        return f"{grouped(number / 1000, 3)} k{unit}"
    places = PLACES.get(unit, 3 if number != number.to_integral_value() else 0)
    text = grouped(number, places)
    return f"{text} {unit}".strip()


def energy_kwh(value) -> str:
    """Prepaid energy in kWh, to the tenth a token carries: `1,173.9 kWh`."""
    number = as_decimal(value)
    return EMPTY if number is None else f"{grouped(number, 1)} kWh"


def money(value, currency: str = "") -> str:
    """Money to the cent with thousands separators, after its currency if given."""
    number = as_decimal(value)
    if number is None:
        return EMPTY
    text = grouped(number, 2)
    return f"{currency} {text}" if currency else text


def duration(value) -> str:
    """A timedelta in words: `15 minutes`, `2 hours 30 minutes`, `45 seconds`."""
    if value is None:
        return EMPTY
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(hours, "hour"), (minutes, "minute")] if hours or minutes else [(seconds, "second")]
    return " ".join(f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n) or "0 seconds"
