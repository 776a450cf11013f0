"""The utility's local day: the unit of daily rollups and aggregated queries.

A local day runs from local midnight to local midnight in `AMI_TIME_ZONE` (else
`TIME_ZONE`): 96 quarter hours, 92 on the spring DST day, 100 in autumn. An interval
belongs to the day in which it *ends* (the 00:00 interval end closes the day before).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils.dateparse import parse_date, parse_datetime

ONE_US = timedelta(microseconds=1)
# The days a query may name: wide enough for any meter's life, narrow enough that the day
# or month after, in any time zone, is still a datetime (9999-12-31 + 1 day overflows).
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)


def day_out_of_range(day: date) -> str | None:
    """Why a queried day cannot be used (None: it can)."""
    if FIRST_DAY <= day <= LAST_DAY:
        return None
    return f"dates must lie between {FIRST_DAY:%Y-%m-%d} and {LAST_DAY:%Y-%m-%d}"


def local_zone() -> ZoneInfo:
    return ZoneInfo(getattr(settings, "AMI_TIME_ZONE", None) or settings.TIME_ZONE or "UTC")


def day_bounds(day: date, zone: ZoneInfo | None = None) -> tuple[datetime, datetime]:
    """(start, end) of a local day in UTC; intervals ending in (start, end] belong to it."""
    zone = zone or local_zone()
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def parse_moment(text: str, *, end: bool = False) -> datetime:
    """An ISO datetime (naive = UTC) or a date: the midnight starting it in the utility's
    zone (AMI_TIME_ZONE); with `end`, the midnight ending it, so start=end=<day> is that
    local day (23 or 25 hours across a DST change). ValueError when it is neither.

    The date is tried first: Python 3.11's `fromisoformat` (under `parse_datetime`) reads
    "2026-12-04" as a naive midnight, which would be taken as UTC.
    """
    text = (text or "").strip()
    try:
        day = parse_date(text)
        moment = None if day else parse_datetime(text)
    except ValueError:  # well-formed but impossible: 2026-02-30
        day = moment = None
    if day is None and moment is None:
        raise ValueError(f"not a date or time: {text!r}")
    problem = day_out_of_range(day or moment.date())
    if problem:
        raise ValueError(problem)
    if day is not None:
        return day_bounds(day)[1 if end else 0]
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def local_day(interval_end: datetime, zone: ZoneInfo | None = None) -> date:
    return (interval_end - ONE_US).astimezone(zone or local_zone()).date()
