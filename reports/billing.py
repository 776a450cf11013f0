"""Billing determinants: per meter, register reads at the period's bounds, consumption and a
quality summary, for a month or any run of the utility's local days.

For each meter in the reader's scope (`restrict(user, "view")`, optionally a grid subtree):

* energy registers (OBIS value group D = 8, TOU rates included: 1.8.1, 1.8.2, ...): the read
  at the period's start and at its end (the billing date). A read counts when it was taken
  within `AMI_BILLING_READ_WINDOW_HOURS` (default 24, at most half the period) of the bound;
  among those the *best read* wins: actual > estimated (ESTIMATED flag) > substituted
  (EDITED flag: a value put in by a person), then the one closest to the bound;
* consumption = end read - start read; when the register has a profile channel of the same
  quantity (`interval_energy.energy_codes`: 1.8.0 <-> 1.29.0 / a cumulative profile), the
  sum of its intervals ending in (start, end] is shown with the difference (read from the
  daily rollup `DailyEnergy`: the period is whole local days, one statement per chunk of
  meters for every channel). When a bound's
  register read is missing, the interval sum is the consumption, flagged `interval sum`;
* maximum demand registers (D = 6): the read at the billing date with its capture time;
* a profile the head-end made from register polls (``Channel.head_end_derived``: a meter
  without memory) is named in the row's flags ("head-end derived profile");
* quality per meter: the share of the period's intervals that are estimated and missing
  (expected = period length / the profile's capture period), over its billed registers'
  profiles that hold data in the period; a meter with such profiles but not one interval in
  the period counts as all missing.

A meter whose estimated + missing share exceeds `AMI_BILLING_MAX_ESTIMATED_SHARE` (default
0.05) is *held*: an export is refused with the held meters named, unless the reader asks to
export anyway, and then the held meters come separately (after the others in CSV, on their
own sheet in XLSX). Values are exact `Decimal`s in the channel's unit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import NamedTuple

from django.conf import settings
from django.db.models import Max, Q, Sum

from meters.choices import ChannelKind
from meters.models import Channel, GridNode, Meter
from meters.obis import parse as parse_obis
from meters.store import DailyEnergy, RegisterRead, to_decimal
from meters.store.days import day_bounds, day_out_of_range, local_zone
from meters.store.interval_energy import energy_codes
from meters.store.quality import Quality
from meters.store.query import select_meters

ENERGY_D, DEMAND_D = 8, 6
ACTUAL, ESTIMATED, SUBSTITUTED = "actual", "estimated", "substituted"
READ_ORDER = {ACTUAL: 0, ESTIMATED: 1, SUBSTITUTED: 2}
INTERVAL_SUM = "interval sum"
CHUNK = 500
SORTS = {
    "serial": "serial",
    "-serial": "-serial",
    "point": "service_point__code",
    "-point": "-service_point__code",
    "model": "meter_model__name",
    "-model": "-meter_model__name",
}

COLUMNS = [
    ("serial", "meter"), ("point", "service_point"), ("obis", "register"), ("name", "name"),
    ("unit", "unit"), ("start_value", "start_read"), ("start_at", "start_read_at"),
    ("start_class", "start_read_class"), ("end_value", "end_read"), ("end_at", "end_read_at"),
    ("end_class", "end_read_class"), ("demand_at", "demand_time"),
    ("consumption", "consumption"), ("source", "consumption_source"),
    ("profile_sum", "interval_sum"), ("difference", "difference"),
    ("estimated_share", "estimated_share"), ("missing_share", "missing_share"),
    ("flags", "flags"), ("held", "held"),
]  # fmt: skip


def max_estimated_share() -> Decimal:
    return Decimal(str(getattr(settings, "AMI_BILLING_MAX_ESTIMATED_SHARE", "0.05")))


def read_window() -> timedelta:
    return timedelta(hours=float(getattr(settings, "AMI_BILLING_READ_WINDOW_HOURS", 24)))


@dataclass(frozen=True)
class Period:
    """Local days `first`..`last`; `start`/`end` their UTC bounds (the billing date: `end`)."""

    first: date
    last: date

    @cached_property
    def start(self) -> datetime:
        return day_bounds(self.first, local_zone())[0]

    @cached_property
    def end(self) -> datetime:
        return day_bounds(self.last, local_zone())[1]

    @cached_property
    def window(self) -> timedelta:
        """How far from a bound a read may be: the setting, at most half the period (so no
        read is both the start and the end read)."""
        return min(read_window(), (self.end - self.start) / 2)

    @property
    def label(self) -> str:
        return f"{self.first:%Y-%m-%d}_{self.last:%Y-%m-%d}"

    @classmethod
    def month(cls, text: str) -> Period:
        """`YYYY-MM` -> that month's local days; ValueError when it is not one."""
        year, _, month = (text or "").partition("-")
        if not (year.isdigit() and month.isdigit() and len(year) == 4):
            raise ValueError("a month is YYYY-MM")
        first = date(int(year), int(month), 1)
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return cls.days(first, following - timedelta(days=1))

    @classmethod
    def days(cls, first: date, last: date) -> Period:
        for day in (first, last):
            if problem := day_out_of_range(day):
                raise ValueError(problem)
        if last < first:
            raise ValueError("the period ends before it starts")
        if (last - first).days > 366:
            raise ValueError("a period is at most 367 days")
        return cls(first, last)

    @classmethod
    def last_days(cls, n: int) -> Period:
        """The `n` local days before today."""
        today = datetime.now(local_zone()).date()
        return cls.days(today - timedelta(days=n), today - timedelta(days=1))

    @classmethod
    def parse(cls, month: str | None, first: str | None, last: str | None) -> Period:
        """`from`/`to` (ISO days) when given, else `month`, else the previous month."""
        if first or last:
            start = date.fromisoformat(first or last)
            return cls.days(start, date.fromisoformat(last or first))
        if month:
            return cls.month(month)
        today = datetime.now(local_zone()).date().replace(day=1)
        return cls.month(f"{today - timedelta(days=1):%Y-%m}")


_EDITED, _ESTIMATED = int(Quality.EDITED), int(Quality.ESTIMATED)


def read_class(flags: int) -> str:
    if flags & _EDITED:
        return SUBSTITUTED
    if flags & _ESTIMATED:
        return ESTIMATED
    return ACTUAL


def best_read(reads: Iterable[Read], at: datetime, window: timedelta | None = None) -> Read | None:
    """The best read within `window` of `at` (actual > estimated > substituted, then the
    closest)."""
    window = read_window() if window is None else window
    near = [r for r in reads if abs(r.read_at - at) <= window]
    return min(
        near,
        key=lambda r: (READ_ORDER[read_class(r.quality)], abs(r.read_at - at), r.read_at),
        default=None,
    )


def register_kind(channel: Channel) -> str | None:
    return _register_kind(channel.obis)


@lru_cache(maxsize=1024)
def _register_kind(obis: str) -> str | None:
    return {ENERGY_D: "energy", DEMAND_D: "demand"}.get(parse_obis(obis).d)


@dataclass
class ProfileSum:
    total: Decimal | None
    expected: int
    estimated: int
    missing: int


def profile_sum(meter_id: int, channel: Channel, period: Period, known: dict) -> ProfileSum:
    """Sum of a profile channel's intervals in the period with its estimated/missing counts;
    `known`: {meter: (sum, values, estimated, seconds per interval)} (`rollup_sums`)."""
    total, present, estimated, step = known.get(meter_id, (0, 0, 0, None))
    seconds = (period.end - period.start).total_seconds()
    expected = round(seconds / step) if step else max(present, 1)
    return ProfileSum(
        to_decimal(total, channel.scaler) if present else None,
        expected,
        estimated,
        max(expected - present, 0),
    )


@dataclass
class MeterDeterminants:
    meter: Meter
    rows: list[dict] = field(default_factory=list)
    estimated_share: Decimal | None = None
    missing_share: Decimal | None = None
    flags: list[str] = field(default_factory=list)
    held: bool = False


def _share(count: int, expected: int) -> Decimal:
    return (Decimal(count) / Decimal(expected)).quantize(Decimal("0.0001")) if expected else None


def _channels_by_model(model_ids) -> dict[int, list[Channel]]:
    out = defaultdict(list)
    for channel in Channel.objects.filter(meter_model_id__in=set(model_ids)).order_by("obis"):
        out[channel.meter_model_id].append(channel)
    return out


def _profile_for(register: Channel, channels: list[Channel]) -> Channel | None:
    codes = energy_codes(register.obis)
    profiles = [c for c in channels if c.kind == ChannelKind.PROFILE and c.obis in codes]
    return min(profiles, key=lambda c: codes.index(c.obis), default=None)


class Read(NamedTuple):
    """A register read as billing needs it (tuples: a chunk has thousands)."""

    meter_id: int
    channel_id: int
    read_at: datetime
    value: int
    quality: int
    capture_time: datetime | None


def _reads(meter_ids, channel_ids, period: Period) -> dict[tuple[int, int], list[Read]]:
    window = period.window
    reads = RegisterRead.objects.filter(meter_id__in=meter_ids, channel_id__in=channel_ids)
    bounds = [
        (period.start - window, period.start + window),
        (period.end - window, period.end + window),
    ]
    out = defaultdict(list)
    seen = set()
    fields = ("meter_id", "channel_id", "read_at", "value", "quality", "capture_time")
    for lo, hi in bounds:
        for row in reads.filter(read_at__gte=lo, read_at__lte=hi).values_list(*fields):
            read = Read(*row)
            if row[:3] not in seen:  # the windows meet at the period's middle
                seen.add(row[:3])
                out[(read.meter_id, read.channel_id)].append(read)
    return out


def _physical(read: Read | None, channel: Channel) -> Decimal | None:
    return None if read is None else to_decimal(read.value, channel.scaler)


def determinants(meters: Iterable[Meter], period: Period) -> Iterator[MeterDeterminants]:
    """Billing determinants of `meters` (already scoped and ordered), in chunks."""
    threshold = max_estimated_share()
    chunk: list[Meter] = []
    for meter in meters:
        chunk.append(meter)
        if len(chunk) >= CHUNK:
            yield from _chunk(chunk, period, threshold)
            chunk = []
    if chunk:
        yield from _chunk(chunk, period, threshold)


def _chunk(meters: list[Meter], period: Period, threshold: Decimal):
    by_model = _channels_by_model(m.meter_model_id for m in meters)
    registers = {
        c.pk: c
        for channels in by_model.values()
        for c in channels
        if c.kind == ChannelKind.REGISTER and register_kind(c)
    }
    reads = _reads([m.pk for m in meters], list(registers), period)
    sums = _interval_sums(meters, by_model, period)
    profiles: dict[int, Channel | None] = {}  # register -> its profile: once per chunk
    for meter in meters:
        channels = by_model.get(meter.meter_model_id, [])
        yield _meter(meter, channels, reads, sums, period, threshold, profiles)


def _interval_sums(meters, by_model, period) -> dict[int, dict]:
    """{profile channel: {meter: (sum, values, estimated, seconds per interval)}} of this
    chunk's meters, from the daily rollup in ONE statement (`rollup_sums`)."""
    profiles = [
        c.pk
        for channels in by_model.values()
        for c in channels
        if c.kind == ChannelKind.PROFILE and c.profile_column is not None
    ]
    out = {pk: {} for pk in profiles}
    for (meter_id, channel_id), sums in rollup_sums([m.pk for m in meters], profiles, period):
        out[channel_id][meter_id] = sums
    return out


def rollup_sums(meter_ids, channel_ids, period: Period):
    """((meter, channel), (sum, values, estimated, seconds per interval)) over the period's
    local days from `DailyEnergy`, which ingest keeps equal to the interval table (a day
    holds the intervals *ending* in it, as the period's (start, end] does).

    The capture period is the shortest day length / values of any day (a whole day gives
    86,400 / 96 = 900 s; a DST day 82,800 / 92 or 90,000 / 100, the same): days of each
    length are counted apart, so a 23- or 25-hour day does not skew it."""
    lengths = defaultdict(list)
    zone = local_zone()
    day = period.first
    while day <= period.last:
        start, end = day_bounds(day, zone)
        lengths[int((end - start).total_seconds())].append(day)
        day += timedelta(days=1)
    most = {
        f"most{seconds}": Max("intervals", filter=Q(day__in=days))
        for seconds, days in lengths.items()
    }
    rows = (
        DailyEnergy.objects.filter(
            meter_id__in=meter_ids,
            channel_id__in=channel_ids,
            day__gte=period.first,
            day__lte=period.last,
        )
        .values("meter_id", "channel_id")
        .annotate(total=Sum("value"), present=Sum("intervals"), estimated=Sum("estimated"), **most)
        .order_by()
    )
    for row in rows:
        steps = [seconds / row[f"most{seconds}"] for seconds in lengths if row[f"most{seconds}"]]
        step = min(steps) if steps else None
        yield (
            (row["meter_id"], row["channel_id"]),
            (row["total"] or 0, row["present"] or 0, row["estimated"] or 0, step),
        )


def _meter(meter, channels, reads, sums, period, threshold, profiles) -> MeterDeterminants:
    result = MeterDeterminants(meter)
    expected = estimated = missing = 0
    profiled = False  # a billed register has a profile channel (with data or not)
    point = meter.service_point.code if meter.service_point_id else ""
    for channel in channels:
        kind = register_kind(channel) if channel.kind == ChannelKind.REGISTER else None
        if kind is None:
            continue
        found = reads.get((meter.pk, channel.pk), [])
        end = best_read(found, period.end, period.window)
        row = {
            "serial": meter.serial, "point": point, "obis": channel.obis, "name": channel.name,
            "unit": channel.unit, "start_value": None, "start_at": None, "start_class": "",
            "end_value": _physical(end, channel), "end_at": end.read_at if end else None,
            "end_class": read_class(end.quality) if end else "", "demand_at": None,
            "consumption": None, "source": "", "profile_sum": None, "difference": None,
            "flags": [],
        }  # fmt: skip
        if kind == "demand":
            row["demand_at"] = end.capture_time if end else None
            if end is None:
                row["flags"].append("no demand read")
            result.rows.append(row)
            continue
        start = best_read(found, period.start, period.window)
        row.update(
            start_value=_physical(start, channel),
            start_at=start.read_at if start else None,
            start_class=read_class(start.quality) if start else "",
        )
        if (profile := profiles.get(channel.pk, channel)) is channel:  # not looked up yet
            profile = profiles[channel.pk] = _profile_for(channel, channels)
        summed = (
            profile_sum(meter.pk, profile, period, sums.get(profile.pk, {})) if profile else None
        )
        if profile is not None and profile.head_end_derived:
            # Polled registers, not a meter profile: say so wherever the sum is shown.
            row["flags"].append("head-end derived profile")
        profiled = profiled or summed is not None
        if summed is not None and summed.total is not None:
            expected += summed.expected
            estimated += summed.estimated
            missing += summed.missing
            row["profile_sum"] = summed.total
        if start is not None and end is not None:
            row["consumption"] = row["end_value"] - row["start_value"]
            row["source"] = "registers"
            if row["profile_sum"] is not None:
                row["difference"] = row["consumption"] - row["profile_sum"]
            if ESTIMATED in (row["start_class"], row["end_class"]):
                row["flags"].append("estimated read")
            if SUBSTITUTED in (row["start_class"], row["end_class"]):
                row["flags"].append("substituted read")
            if row["consumption"] < 0:
                row["flags"].append("register ran backwards")
        else:
            row["flags"].append(_missing_reads(start, end))
            if row["profile_sum"] is not None:
                row["consumption"] = row["profile_sum"]
                row["source"] = INTERVAL_SUM
        result.rows.append(row)
    if profiled and not expected:  # profiles, but not one interval in the period
        expected, missing = 1, 1
        result.flags.append("no intervals")
    if expected:
        result.estimated_share = _share(estimated, expected)
        result.missing_share = _share(missing, expected)
        result.held = result.estimated_share + result.missing_share > threshold
    if not result.rows:
        result.flags.append("no billing registers")
    if result.held:
        result.flags.append("held: estimated/missing share above threshold")
    for row in result.rows:
        row["estimated_share"] = result.estimated_share
        row["missing_share"] = result.missing_share
        row["held"] = result.held
        row["flags"] = "; ".join(row["flags"] + result.flags)
    return result


def _missing_reads(start, end) -> str:
    if start is None and end is None:
        return "start and end reads missing"
    return "start read missing" if start is None else "end read missing"


def meters_for(user, *, node: GridNode | None = None, sort: str = "serial"):
    """The reader's meters (optionally a grid subtree), ordered by `sort` then serial."""
    meters = select_meters(Meter.objects.restrict(user, "view"), node=node)
    order = SORTS.get(sort, "serial")
    return meters.select_related("service_point", "meter_model").order_by(order, "serial")


def _text(value) -> str | None:
    return None if value is None else str(value)


def as_json(result: MeterDeterminants, period: Period) -> dict:
    """One meter's determinants for the API: decimals as exact strings."""
    decimals = ("start_value", "end_value", "consumption", "profile_sum", "difference")
    keep = ("obis", "name", "unit", "start_at", "start_class", "end_at", "end_class",
            "demand_at", "source", "flags")  # fmt: skip
    return {
        "serial": result.meter.serial,
        "service_point": result.meter.service_point.code if result.meter.service_point_id else "",
        "first_day": period.first,
        "last_day": period.last,
        "estimated_share": _text(result.estimated_share),
        "missing_share": _text(result.missing_share),
        "held": result.held,
        "flags": result.flags,
        "registers": [
            {**{k: row[k] for k in keep}, **{k: _text(row[k]) for k in decimals}}
            for row in result.rows
        ],
    }
