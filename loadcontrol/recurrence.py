"""When a load-control schedule switches: its slots in UTC from local dates and times.

Pure (no Django): the schedule's days, local start time and duration in, UTC intervals out,
in the utility's time zone across daylight-saving changes:

* a start time that does not exist on a day (the spring-forward hour) is moved on by the
  hour skipped: 02:30 on a 02:00 -> 03:00 day starts at 03:30 local (as cron and
  zoneinfo's fold=0 read it);
* a start time that happens twice (the fall-back hour) starts at its first occurrence;
* the duration is elapsed time: a 4-hour slot is 4 hours long on a 23- or 25-hour day, so its
  local end moves by the hour the clocks changed.

Overlaps between schedules are resolved by union: a meter is off while any slot covering it
is on and is restored when the last one covering it ends (`covering`), whatever order the
schedules were made in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

ONCE, DAILY, WEEKLY = "once", "daily", "weekly"
MAX_DURATION = timedelta(days=7)


@dataclass(frozen=True)
class Rule:
    starts_on: date
    at: time
    duration: timedelta
    recurrence: str = ONCE
    weekdays: tuple[int, ...] = ()  # Monday 0 .. Sunday 6, for WEEKLY
    until: date | None = None  # last local day a slot may start on (inclusive)


class BadRule(ValueError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def check(rule: Rule) -> None:
    if not timedelta(minutes=1) <= rule.duration <= MAX_DURATION:
        raise BadRule("a slot lasts from 1 minute to 7 days", "duration_minutes")
    if rule.recurrence not in (ONCE, DAILY, WEEKLY):
        raise BadRule("recurrence is once, daily or weekly", "recurrence")
    if rule.recurrence == WEEKLY and not rule.weekdays:
        raise BadRule("a weekly schedule names its weekdays", "weekdays")
    if any(not 0 <= d <= 6 for d in rule.weekdays):
        raise BadRule("weekdays are 0 (Monday) to 6 (Sunday)", "weekdays")
    if rule.until is not None and rule.until < rule.starts_on:
        raise BadRule("until is on or after the first day", "until")


def local_start(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of `at` on `day` on the wall clock of `zone` (see the module's rules)."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)  # fold=0: see the rules


def days(rule: Rule, first: date, last: date) -> Iterator[date]:
    day = max(rule.starts_on, first)
    end = min(last, rule.until) if rule.until else last
    if rule.recurrence == ONCE:
        if first <= rule.starts_on <= last and (rule.until is None or rule.starts_on <= rule.until):
            yield rule.starts_on
        return
    while day <= end:
        if rule.recurrence == DAILY or day.weekday() in rule.weekdays:
            yield day
        day += timedelta(days=1)


def slots(
    rule: Rule, zone: ZoneInfo, since: datetime, until: datetime
) -> list[tuple[datetime, datetime]]:
    """The rule's slots (UTC start, UTC end) that are on at some time in [since, until)."""
    first = (since - rule.duration).astimezone(zone).date() - timedelta(days=1)
    last = until.astimezone(zone).date() + timedelta(days=1)
    out = []
    for day in days(rule, first, last):
        start = local_start(day, rule.at, zone)
        end = start + rule.duration
        if end > since and start < until:
            out.append((start, end))
    return out


def covering(intervals: Iterable[tuple[datetime, datetime]], at: datetime) -> bool:
    """Whether any of `intervals` covers the instant `at` (start inclusive, end exclusive)."""
    return any(start <= at < end for start, end in intervals)


def overlaps(
    mine: Iterable[tuple[datetime, datetime]], theirs: Iterable[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """The spans where a slot of `mine` and one of `theirs` are both on."""
    found = []
    theirs = sorted(theirs)
    for a_start, a_end in sorted(mine):
        for b_start, b_end in theirs:
            if b_start >= a_end:
                break
            if b_end > a_start:
                found.append((max(a_start, b_start), min(a_end, b_end)))
    return found
