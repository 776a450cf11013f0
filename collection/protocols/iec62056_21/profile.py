"""Per-model profile plug-ins: how a meter gives its load profile (``P.01``) and its event log
(``P.98``) in programming mode, and how the answer reads. Pure (no I/O, no OBIS module), so the
simulator writes what the session parses with the same functions.

The ``generic`` plug-in (the layout of IEC 62056-21 meters that follow the common
``P.01``/``P.98`` convention):

* request ``SOH R5 STX P.01(ZYYMMDDhhmm;ZYYMMDDhhmm) ETX BCC`` (both ends included, interval
  ends; ``Z`` the season digit: 0 standard, 1 summer, 2 UTC);
* answer, in one or several (partial) blocks: a header
  ``P.01(ZYYMMDDhhmm)(SS)(pp)(n)(K1)(E1)...(Kn)(En)`` - the end of the first interval, the
  status byte in hex, the period in minutes, the number of channels and each channel's
  address and unit - then one line of ``n`` bracketed values per interval, each interval one
  period after the one before. A new header starts after a gap or when the status changes;
  ``P.01()`` alone: nothing in the range;
* the event log ``R5 P.98(ZYYMMDDhhmmss;ZYYMMDDhhmmss)`` answers one line per entry,
  ``P.98(ZYYMMDDhhmmss)(CCCC)()(n)(K1)(E1)...(v1)...`` - the event code in hex, then optional
  values.

The status byte is the IEC 62056 profile status the contract carries (0x80 power down, 0x20
clock adjusted, 0x04 data not valid). A meter on UTC (season digit 2, or any digit when no
zone is given) is read as UTC. A meter on the utility's local time (its clock plug-in is a
``-local`` one, ``zone`` given) writes local stamps with the season digit 0 (standard) or 1
(summer), which says which of the repeated hour at the end of summer time it means; a new
header starts when the season changes, and the rows after a header are one period apart in
real time, so a profile across a summer-time change is contiguous in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from ..errors import MalformedResponse
from . import clock, codec


@dataclass(frozen=True)
class ProfileDialect:
    command: str = "R5"  # the programming command that reads a profile or a log
    season: str = "2"  # the season digit written in requests
    event_log: str = "P.98"  # the address of the event log


DIALECTS = {"generic": ProfileDialect()}


@dataclass(frozen=True, slots=True)
class ProfileData:
    channels: tuple[tuple[str, str | None], ...]  # (address, unit) per column
    period_s: int | None
    rows: tuple[tuple[datetime, int, tuple[str, ...]], ...]  # (interval end UTC, status, values)


@dataclass(frozen=True, slots=True)
class LogEntry:
    at: datetime  # UTC
    code: int
    values: tuple[tuple[str, str | None], ...] = ()  # (value, unit)


# ----------------------------------------------------------------- time stamps


def stamp(
    at: datetime, season: str = "2", seconds: bool = False, zone: tzinfo | None = None
) -> str:
    """``ZYYMMDDhhmm`` (``ss`` too when `seconds`) of an aware time: UTC, or the local time of
    `zone` with its season digit (0 standard, 1 summer)."""
    fmt = "%y%m%d%H%M%S" if seconds else "%y%m%d%H%M"
    if zone is None:
        return season + at.astimezone(UTC).strftime(fmt)
    local, summer = clock.to_local(at, zone)
    return ("1" if summer else "0") + local.strftime(fmt)


def parse_stamp(text: str, zone: tzinfo | None = None) -> datetime:
    """A ``ZYYMMDDhhmm[ss]`` time stamp (as UTC; local in `zone` unless Z = 2);
    MalformedResponse when it is none."""
    at = None
    if len(text) in (11, 13) and text.isdigit() and text[0] in "0129":
        season = text[0]
        local = None if season == "2" else zone
        summer = {"0": False, "1": True}.get(season)
        at = clock.timestamp(text[1:], local, summer)
    if at is None:
        raise MalformedResponse(f"not a profile time stamp: {text[:20]!r}")
    return at


def request(
    address: str, start: datetime, end: datetime, dialect: ProfileDialect, zone=None
) -> bytes:
    seconds = address == dialect.event_log
    first = stamp(start, dialect.season, seconds, zone)
    return codec.read(
        address, f"{first};{stamp(end, dialect.season, seconds, zone)}", dialect.command
    )


def parse_range(value: str, zone: tzinfo | None = None) -> tuple[datetime, datetime]:
    """The (start, end) of a request's ``from;to`` bracket."""
    first, sep, last = value.partition(";")
    if not sep:
        raise MalformedResponse(f"not a time range: {value[:40]!r}")
    return parse_stamp(first, zone), parse_stamp(last, zone)


# ----------------------------------------------------------------- load profile


def _int(text: str, what: str, base: int = 10) -> int:
    try:
        return int(text, base)
    except ValueError:
        raise MalformedResponse(f"{what} is not a number: {text[:20]!r}") from None


def parse_profile(
    sets: list[codec.DataSet], address: str, zone: tzinfo | None = None
) -> ProfileData:
    """The rows of a profile answer (the data sets of its blocks)."""
    channels: tuple | None = None
    period_s = None
    rows: list = []
    at = None
    status = 0
    for data_set in sets:
        values = data_set.values
        if data_set.address == address:
            if len(values) == 1 and values[0] == ("", None):
                continue  # nothing in the range
            if len(values) < 4:
                raise MalformedResponse(f"profile header with {len(values)} brackets")
            at = parse_stamp(values[0][0], zone)
            status = _int(values[1][0], "profile status", 16)
            if not 0 <= status <= 0xFF:
                raise MalformedResponse(f"profile status {values[1][0]!r} is not a byte")
            minutes = _int(values[2][0], "profile period")
            count = _int(values[3][0], "channel count")
            if minutes <= 0 or not 0 < count <= 64 or len(values) != 4 + 2 * count:
                raise MalformedResponse("profile header: period, count and channels disagree")
            these = tuple(
                (values[4 + 2 * i][0], values[5 + 2 * i][0] or None) for i in range(count)
            )
            if channels is not None and (these != channels or minutes * 60 != period_s):
                raise MalformedResponse("the profile's channels or period change in one answer")
            channels, period_s = these, minutes * 60
        elif data_set.address == "":
            if channels is None or at is None:
                raise MalformedResponse("profile values before any header")
            if len(values) != len(channels):
                raise MalformedResponse(f"{len(values)} values for {len(channels)} channels")
            rows.append((at, status, tuple(v for v, _unit in values)))
            at = at + timedelta(seconds=period_s)
        else:
            raise MalformedResponse(f"unexpected data set {data_set.address!r} in a profile")
    return ProfileData(channels or (), period_s, tuple(rows))


def format_profile(
    address: str,
    period_s: int,
    channels: tuple[tuple[str, str | None], ...],
    rows: list[tuple[datetime, int, tuple[str, ...]]],
    season: str = "2",
    zone: tzinfo | None = None,
) -> bytes:
    """The answer :func:`parse_profile` reads (a new header after a gap, a status change or,
    on local time, a change of season)."""
    if not rows:
        return f"{address}()".encode("ascii") + codec.CRLF
    step = timedelta(seconds=period_s)
    out = []
    expected = None
    last_status = last_season = None
    for at, status, values in rows:
        at_stamp = stamp(at, season, zone=zone)
        if at != expected or status != last_status or at_stamp[0] != last_season:
            head = f"{address}({at_stamp})({status:02X})({period_s // 60})({len(channels)})"
            head += "".join(f"({a})({u or ''})" for a, u in channels)
            out.append(head)
        out.append("".join(f"({v})" for v in values))
        expected, last_status, last_season = at + step, status, at_stamp[0]
    return codec.CRLF.join(line.encode("ascii") for line in out) + codec.CRLF


# ----------------------------------------------------------------- event log


def parse_log(
    sets: list[codec.DataSet], address: str, zone: tzinfo | None = None
) -> list[LogEntry]:
    out = []
    for data_set in sets:
        values = data_set.values
        if data_set.address != address:
            raise MalformedResponse(f"unexpected data set {data_set.address!r} in a log")
        if len(values) == 1 and values[0] == ("", None):
            continue
        if len(values) < 4:
            raise MalformedResponse(f"log entry with {len(values)} brackets")
        at = parse_stamp(values[0][0], zone)
        code = _int(values[1][0], "event code", 16)
        count = _int(values[3][0], "value count")
        if not 0 <= count <= 64 or len(values) != 4 + 3 * count:
            raise MalformedResponse("log entry: value count and brackets disagree")
        units = [values[5 + 2 * i][0] or None for i in range(count)]
        given = values[4 + 2 * count :]
        out.append(
            LogEntry(at, code, tuple((v, u) for (v, _), u in zip(given, units, strict=True)))
        )
    return out


def format_log(
    address: str, entries: list[LogEntry], season: str = "2", zone: tzinfo | None = None
) -> bytes:
    if not entries:
        return f"{address}()".encode("ascii") + codec.CRLF
    lines = []
    for e in entries:
        at = stamp(e.at, season, seconds=True, zone=zone)
        line = f"{address}({at})({e.code:04X})()({len(e.values)})"
        line += "".join(f"({a})({u or ''})" for a, (_v, u) in enumerate(e.values))
        line += "".join(f"({v})" for v, _u in e.values)
        lines.append(line.encode("ascii"))
    return codec.CRLF.join(lines) + codec.CRLF
