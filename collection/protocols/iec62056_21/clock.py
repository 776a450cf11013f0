"""Per-model clock plug-ins: where a meter keeps its time and date, and how it writes them.

A plug-in is data, not code: the R1/W1 addresses of the time and the date, the write
formats, and whether the meter keeps UTC or the local time of the utility's zone
(``local``: the ``-local`` plug-ins). Reading is tolerant (digits are taken, separators
ignored). A local wall time becomes UTC through the zone's rules (:func:`to_utc`): the hour
that repeats when summer time ends is told apart by the season digit where the meter gives
one (profile and log stamps), else by the head-end's own clock (the readout clock of a
meter that is not hours off); an hour skipped when summer time starts is no time at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from ..errors import MalformedResponse


@dataclass(frozen=True)
class ClockDialect:
    time_address: str  # hh mm ss
    date_address: str  # YY MM DD
    time_format: str  # strftime of a W1 value
    date_format: str
    local: bool = False  # the meter's clock, stamps and W1 values are the utility's local time


DIALECTS = {
    # IEC 62056-61 short codes, written without separators (most meters).
    "standard": ClockDialect("0.9.1", "0.9.2", "%H%M%S", "%y%m%d"),
    # The same registers written with separators (e.g. Landis+Gyr ZxD, Iskra MT17x).
    "separated": ClockDialect("0.9.1", "0.9.2", "%H:%M:%S", "%y-%m-%d"),
    # The same, on the local time of the utility's zone (summer time included).
    "standard-local": ClockDialect("0.9.1", "0.9.2", "%H%M%S", "%y%m%d", local=True),
    "separated-local": ClockDialect("0.9.1", "0.9.2", "%H:%M:%S", "%y-%m-%d", local=True),
}


def to_utc(
    local: datetime, zone: tzinfo | None, *, summer: bool | None = None, near=None
) -> datetime:
    """A wall time of the meter's clock (naive) as aware UTC; `zone` None: it is UTC.

    The hour repeated at the end of summer time is the summer one when `summer` says so (a
    season digit), else the one nearer `near` (the head-end's clock), else the first. A time
    in the hour skipped at the start of summer time is MalformedResponse."""
    if zone is None:
        return local.replace(tzinfo=UTC)
    options = []
    for fold in (0, 1):
        at = local.replace(tzinfo=zone, fold=fold)
        if at.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == local:
            options.append(at)
    if not options:
        raise MalformedResponse(f"{local} does not exist in {zone} (skipped for summer time)")
    if summer is not None:
        options = [a for a in options if bool(a.dst()) == summer] or options
    if near is not None:
        options.sort(key=lambda a: abs(a.astimezone(UTC) - near))
    return options[0].astimezone(UTC)


def to_local(at: datetime, zone: tzinfo | None) -> tuple[datetime, bool]:
    """An aware time as the meter's wall time (naive) and whether it is summer time."""
    if zone is None:
        return at.astimezone(UTC).replace(tzinfo=None), False
    local = at.astimezone(zone)
    return local.replace(tzinfo=None), bool(local.dst())


def parse(
    time_value: str, date_value: str, zone: tzinfo | None = None, near: datetime | None = None
) -> datetime:
    """The meter's clock from its time and date values (UTC; local in `zone` when given)."""
    t = re.sub(r"\D", "", time_value)
    d = re.sub(r"\D", "", date_value)
    if len(d) == 7:  # a leading day-of-week digit
        d = d[1:]
    if len(t) != 6 or len(d) != 6:
        raise MalformedResponse(f"not a time/date: {time_value!r} {date_value!r}")
    try:
        wall = datetime(  # noqa: DTZ001 - a wall time, its zone is to_utc's
            2000 + int(d[0:2]), int(d[2:4]), int(d[4:6]), int(t[0:2]), int(t[2:4]), int(t[4:6])
        )
    except ValueError:
        raise MalformedResponse(f"not a time/date: {time_value!r} {date_value!r}") from None
    return to_utc(wall, zone, near=near)


def timestamp(
    value: str, zone: tzinfo | None = None, summer: bool | None = None
) -> datetime | None:
    """A capture time ``YYMMDDhhmm[ss]`` (maximum demand's second bracket; local in `zone`
    when given), None if it is none."""
    digits = re.sub(r"\D", "", value)
    if len(digits) not in (10, 12):
        return None
    try:
        wall = datetime(  # noqa: DTZ001 - a wall time, its zone is to_utc's
            2000 + int(digits[0:2]),
            int(digits[2:4]),
            int(digits[4:6]),
            int(digits[6:8]),
            int(digits[8:10]),
            int(digits[10:12] or 0),
        )
        return to_utc(wall, zone, summer=summer)
    except (ValueError, MalformedResponse):
        return None
