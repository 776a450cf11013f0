"""Token identifier (TID): minutes since the key's base date, carried in 24 bits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .errors import StsValueError, TidRangeError

TID_BITS = 24
TID_MAX = (1 << TID_BITS) - 1

# IEC 62055-41 base dates; a decoder key is tied to one of them.
BASE_DATES: dict[int, datetime] = {
    1993: datetime(1993, 1, 1, tzinfo=UTC),
    2014: datetime(2014, 1, 1, tzinfo=UTC),
    2035: datetime(2035, 1, 1, tzinfo=UTC),
}


def base_datetime(base_date: int) -> datetime:
    """The UTC instant of a base date given by its year (1993, 2014 or 2035)."""
    try:
        return BASE_DATES[base_date]
    except (KeyError, TypeError):
        raise StsValueError(
            f"base date must be one of {sorted(BASE_DATES)}, got {base_date!r}"
        ) from None


def range_end(base_date: int) -> datetime:
    """The last instant that still has a TID for this base date (1993 -> 2024-11-24 10:15)."""
    return base_datetime(base_date) + timedelta(minutes=TID_MAX + 1) - timedelta(microseconds=1)


def tid_from_datetime(when: datetime, base_date: int) -> int:
    """Return the TID (whole minutes since the base date) for an aware datetime.

    Seconds are truncated. Raises :class:`TidRangeError` when ``when`` is before the base
    date or after the 24-bit range (for base date 1993 the range ended on 2024-11-24).
    """
    if not isinstance(when, datetime):
        raise StsValueError(f"time of issue must be a datetime, got {type(when).__name__}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise StsValueError("time of issue must be timezone-aware (e.g. UTC)")
    base = base_datetime(base_date)
    delta = when - base
    if delta < timedelta(0):
        raise TidRangeError(
            f"time of issue {when.isoformat()} is before base date {base.date().isoformat()}"
        )
    minutes = delta // timedelta(minutes=1)
    if minutes > TID_MAX:
        raise TidRangeError(
            f"time of issue {when.isoformat()} is past the 24-bit TID range of base date "
            f"{base_date} (ended {range_end(base_date).strftime('%Y-%m-%d %H:%M')} UTC); "
            "a key with a later base date is needed"
        )
    return minutes


def datetime_from_tid(tid: int, base_date: int) -> datetime:
    """The UTC minute a TID stands for, relative to the given base date."""
    if isinstance(tid, bool) or not isinstance(tid, int) or not 0 <= tid <= TID_MAX:
        raise TidRangeError(f"TID must be an integer in 0..{TID_MAX}, got {tid!r}")
    return base_datetime(base_date) + timedelta(minutes=tid)
