"""Per-model clock plug-ins: where a meter keeps its time and date, and how it writes them.

A plug-in is data, not code: the R1/W1 addresses of the time and the date and the write
formats. Reading is tolerant (digits are taken, separators ignored). The meter's clock is
taken as UTC; a meter on local time needs an offset plug-in (not built yet).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from ..errors import MalformedResponse


@dataclass(frozen=True)
class ClockDialect:
    time_address: str  # hh mm ss
    date_address: str  # YY MM DD
    time_format: str  # strftime of a W1 value
    date_format: str


DIALECTS = {
    # IEC 62056-61 short codes, written without separators (most meters).
    "standard": ClockDialect("0.9.1", "0.9.2", "%H%M%S", "%y%m%d"),
    # The same registers written with separators (e.g. Landis+Gyr ZxD, Iskra MT17x).
    "separated": ClockDialect("0.9.1", "0.9.2", "%H:%M:%S", "%y-%m-%d"),
}


def parse(time_value: str, date_value: str) -> datetime:
    """The meter's clock from its time and date values (UTC)."""
    t = re.sub(r"\D", "", time_value)
    d = re.sub(r"\D", "", date_value)
    if len(d) == 7:  # a leading day-of-week digit
        d = d[1:]
    if len(t) != 6 or len(d) != 6:
        raise MalformedResponse(f"not a time/date: {time_value!r} {date_value!r}")
    try:
        return datetime(
            2000 + int(d[0:2]),
            int(d[2:4]),
            int(d[4:6]),
            int(t[0:2]),
            int(t[2:4]),
            int(t[4:6]),
            tzinfo=UTC,
        )
    except ValueError:
        raise MalformedResponse(f"not a time/date: {time_value!r} {date_value!r}") from None


def timestamp(value: str) -> datetime | None:
    """A capture time ``YYMMDDhhmm`` (maximum demand's second bracket), None if it is none."""
    digits = re.sub(r"\D", "", value)
    if len(digits) not in (10, 12):
        return None
    try:
        return datetime(
            2000 + int(digits[0:2]),
            int(digits[2:4]),
            int(digits[4:6]),
            int(digits[6:8]),
            int(digits[8:10]),
            int(digits[10:12] or 0),
            tzinfo=UTC,
        )
    except ValueError:
        return None
