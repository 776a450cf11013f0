"""Reading the store: values of chosen meters and channels over a time range.

One engine serves the meter page's graph (`/api/meters/<id>/series/`), the data query
page, reports and their exports, and the portal, so they always agree. Everything starts
from meters the caller has already scoped with `Meter.objects.restrict(user, "view")`; the
engine never widens it.

Resolutions:

* ``raw``: the stored values (profile intervals stamped with their *end*, register reads
  at their read time) with their quality flags.
* ``hour`` / ``day`` / ``month``: one value per local bucket (settings.TIME_ZONE), labelled
  by the bucket's *start*. An interval belongs to the bucket in which it ends, as in the
  daily rollup (`meters.store.rollups`). Energy channels (unit ending in "h": Wh, varh, kWh)
  are summed, other quantities averaged. Days and months come from the `DailyEnergy`
  rollup (one row per meter, channel and day), hours from one SQL aggregation, so a year
  of a meter answers from ~365 rows rather than 35,000 intervals. Aggregated ranges are
  widened to whole buckets. A bucket's flags say ESTIMATED when any of its values was
  estimated and MISSING when a value is missing or fewer intervals than expected exist.
* ``auto``: raw up to two weeks, hourly up to three months, daily up to three years,
  monthly beyond; an explicit ``raw`` over more than `RAW_MAX` is answered hourly.

Register channels have no sums: aggregated, a bucket holds the register's last read in it.
A cumulative profile channel (a register captured by the profile, `Channel.accumulation`)
shows interval energy at every resolution, derived by `meters.store.interval_energy`: raw is one
difference per capture, hours sum those differences, days and months read the rollup.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import groupby
from typing import NamedTuple

from django.db.models import Count, DateTimeField, ExpressionWrapper, F, Q, Sum
from django.db.models.functions import Trunc, TruncMonth

from meters.choices import ChannelKind, MeterStatus
from meters.models import Channel, GridNode, Meter
from meters.obis import normalise as normalise_obis
from meters.obis import parse as parse_obis

from . import interval_energy
from .compaction import day_bounds as utc_day_bounds
from .compaction import stored_intervals
from .days import day_bounds, local_day, local_zone
from .models import DailyEnergy, EventRecord, RegisterRead, StoredInterval
from .quality import VALUE_COLUMNS, Quality, to_decimal

RAW, HOUR, DAY, MONTH, AUTO = "raw", "hour", "day", "month", "auto"
RESOLUTIONS = (RAW, HOUR, DAY, MONTH)
RAW_AUTO_LIMIT = timedelta(days=14)
HOUR_AUTO_LIMIT = timedelta(days=92)
DAY_AUTO_LIMIT = timedelta(days=3 * 366)
RAW_MAX = timedelta(days=35)
DEFAULT_PERIOD_S = 900
ONE_US = timedelta(microseconds=1)
WINDOW, WINDOW_MAX = 8, 4096  # meters per read of `interval_rows_after`
SUM, MEAN, LAST = "sum", "mean", "last"


def choose_resolution(requested: str | None, start: datetime, end: datetime) -> str:
    """The resolution actually used for a request (see the module docstring)."""
    span = end - start
    if requested == RAW and span > RAW_MAX:
        return HOUR
    if requested in RESOLUTIONS:
        return requested
    if span <= RAW_AUTO_LIMIT:
        return RAW
    if span <= HOUR_AUTO_LIMIT:
        return HOUR
    return DAY if span <= DAY_AUTO_LIMIT else MONTH


def aggregate_of(channel: Channel, resolution: str) -> str | None:
    if resolution == RAW:
        return None
    if channel.kind == ChannelKind.REGISTER:
        return LAST
    return SUM if (channel.unit or "").lower().endswith("h") else MEAN


def panel_of(channel: Channel) -> tuple[str, str]:
    """Which graph panel a channel is drawn in: one per unit and kind, so a cumulative
    register (MWh) never flattens the 15-minute intervals (Wh) that share its unit."""
    kind = {
        ChannelKind.REGISTER: "cumulative register",
        ChannelKind.PROFILE: "per interval",
    }.get(channel.kind, channel.get_kind_display().lower())
    unit = channel.unit or "value"
    return f"{unit}:{channel.kind}", f"{unit}, {kind}"


def flag_names(flags: int) -> str:
    """Quality flags as words: "estimated,missing"."""
    return ",".join(f.name.lower() for f in Quality if flags & f)


class Point(NamedTuple):
    """One value of a series: a stored interval/read, or a bucket of them.

    A named tuple: a month of raw intervals makes thousands, and a tuple is built in half
    the time of a frozen dataclass."""

    ts: datetime
    value: Decimal | None
    flags: int = 0
    count: int | None = None  # values in the bucket (aggregates only)


# ------------------------------------------------------------------ meters and channels


def select_meters(
    meters,
    *,
    q: str = "",
    status: str = "",
    meter_model: str | int | None = None,
    node: GridNode | None = None,
    serials: Iterable[str] = (),
):
    """Narrow already-scoped meters by the meter list's filters or a grid subtree."""
    q = (q or "").strip()
    if q:
        meters = meters.filter(
            Q(serial__icontains=q)
            | Q(service_point__code__icontains=q)
            | Q(service_point__address__icontains=q)
            | Q(service_point__customers__account_number__icontains=q)
            | Q(service_point__customers__name__icontains=q)
        ).distinct()
    if status in MeterStatus.values:
        meters = meters.filter(status=status)
    if meter_model:
        meters = meters.filter(meter_model_id=meter_model)
    if node is not None:
        meters = meters.filter(service_point__path__startswith=node.path)
    serials = [s for s in serials if s]
    if serials:
        meters = meters.filter(serial__in=serials)
    return meters.order_by("serial")


KIND_PREFIXES = (ChannelKind.PROFILE, ChannelKind.REGISTER)


def parse_channels(text: str | Iterable[str]) -> list[str]:
    """Channel references from "a,b" or a list, normalised; unparseable ones are dropped.

    A reference is an OBIS code, optionally naming the kind: `register:1-0:1.8.0*255`,
    `profile:1-0:1.8.0*255` (see `resolve_channels`).
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in items:
        kind, _, code = item.strip().partition(":") if _has_kind(item) else ("", "", item)
        try:
            ref = normalise_obis(code.strip())
        except ValueError:
            continue
        ref = f"{kind}:{ref}" if kind else ref
        if ref not in out:
            out.append(ref)
    return out


def _has_kind(item: str) -> bool:
    return item.strip().split(":", 1)[0] in KIND_PREFIXES


def _split_ref(ref: str) -> tuple[str, str]:
    if _has_kind(ref):
        kind, code = ref.split(":", 1)
        return kind, code
    return "", ref


def resolve_channels(channels: Iterable[Channel], refs: list[str]) -> list[Channel]:
    """One model's channels named by `refs`, in the order asked, each at most once.

    * `register:CODE` -- the register channel with that code;
    * `profile:CODE` -- the profile channel with that code, or else the model's profile
      channel counting the same energy in the other style (`1-0:1.29.0` interval energy
      and `1-0:1.8.0` cumulative captures are one quantity: `interval_energy.energy_codes`);
    * `CODE` -- the channel with that code; when a profile and a register share it, the
      profile one (interval energy); an interval-energy code (D = 29) the model lacks falls
      back to its cumulative profile channel of the quantity, as `profile:` does.
    """
    channels = list(channels)
    out: list[Channel] = []
    for ref in refs:
        kind, code = _split_ref(ref)
        exact = [c for c in channels if c.obis == code and (not kind or c.kind == kind)]
        exact.sort(key=lambda c: c.kind != ChannelKind.PROFILE)
        chosen = exact[:1]
        if not chosen and (kind == ChannelKind.PROFILE or not kind):
            codes = interval_energy.energy_codes(code)
            if kind or parse_obis(code).d == interval_energy.INTERVAL_D:
                chosen = [c for c in channels if c.kind == ChannelKind.PROFILE and c.obis in codes][
                    :1
                ]
        for channel in chosen:
            if channel not in out:
                out.append(channel)
    return out


def queryable_channels(model_ids: Iterable[int]):
    """Profile and register channels of these meter models (what a query can show)."""
    return Channel.objects.filter(
        meter_model_id__in=set(model_ids),
        kind__in=[ChannelKind.PROFILE, ChannelKind.REGISTER],
    ).order_by("kind", "obis")


def channels_by_model(model_ids: Iterable[int], refs: list[str]) -> dict[int, list[Channel]]:
    """Per meter model, its channels named by `refs` (`resolve_channels`), in the order asked."""
    of_model: dict[int, list[Channel]] = {}
    for channel in queryable_channels(model_ids):
        of_model.setdefault(channel.meter_model_id, []).append(channel)
    out = {}
    for model_id, channels in of_model.items():
        chosen = resolve_channels(channels, refs)
        if chosen:
            out[model_id] = chosen
    return out


# ------------------------------------------------------------------ time buckets


def bucket_range(start: datetime, end: datetime, resolution: str) -> tuple[datetime, datetime]:
    """Widen (start, end] to whole local days or months for aggregated resolutions."""
    if resolution in (RAW, HOUR):
        if resolution == HOUR:
            start = start.replace(minute=0, second=0, microsecond=0)
            if end != end.replace(minute=0, second=0, microsecond=0):
                end = end.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        return start, end
    zone = local_zone()
    first = local_day(start + ONE_US, zone)
    last = local_day(end, zone)
    if resolution == MONTH:
        first = first.replace(day=1)
        last = (last.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return day_bounds(first, zone)[0], day_bounds(last, zone)[1]


def _local_midnight(day: date) -> datetime:
    return day_bounds(day)[0].astimezone(local_zone())


def _expected(period_s: int, bucket: datetime, resolution: str) -> int:
    # Called for every hour of a series: an hour needs no zone (looking it up from the
    # settings for each of a month's 720 hours was ~40% of that page's CPU).
    if resolution == HOUR:
        seconds = 3600
    else:
        zone = local_zone()
        first = bucket.astimezone(zone).date()
        if resolution == DAY:
            nxt = first + timedelta(days=1)
        else:
            nxt = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
        lo, _ = day_bounds(first, zone)
        hi, _ = day_bounds(nxt, zone)
        seconds = (hi - lo).total_seconds()
    return max(1, int(seconds // period_s))


def profile_period(meter_id: int, group: int, start: datetime, end: datetime) -> int:
    """Seconds between a meter's profile entries (the first two in range; 900 if unknown)."""
    stamps = list(
        stored_intervals(meter_id, group, start, end)
        .order_by("ts")
        .values_list("ts", flat=True)[:2]
    )
    if len(stamps) == 2:
        return max(60, int((stamps[1] - stamps[0]).total_seconds()))
    return DEFAULT_PERIOD_S


# ------------------------------------------------------------------ one series


def series(
    meter_id: int, channel: Channel, start: datetime, end: datetime, resolution: str
) -> Iterator[Point]:
    """One meter's channel over (start, end] at `resolution` (already chosen)."""
    if channel.kind == ChannelKind.REGISTER:
        return _register_series(meter_id, channel, start, end, resolution)
    if resolution == RAW:
        return raw_series(meter_id, channel, start, end)
    if resolution == HOUR:
        return _hourly_series(meter_id, channel, start, end)
    return _rollup_series(meter_id, channel, start, end, resolution)


def raw_series(meter_id: int, channel: Channel, start: datetime, end: datetime) -> Iterator[Point]:
    """One meter's profile channel as stored, intervals ending in (start, end]: interval
    energy (a cumulative channel's derived differences), a missing value flagged MISSING."""
    scaler, missing = channel.scaler, int(Quality.MISSING)
    for ts, value, flags in interval_energy.energy_series(meter_id, channel, start, end):
        if value is None:
            yield Point(ts, None, int(flags) | missing)
        else:
            yield Point(ts, Decimal(value).scaleb(scaler) if scaler else Decimal(value), flags)


def _bucket_value(total, count: int, channel: Channel, aggregate: str) -> Decimal | None:
    if total is None or not count:
        return None
    value = to_decimal(int(total), channel.scaler)
    if aggregate == MEAN:
        exponent = min(channel.scaler, 0) - 3
        value = (value / count).quantize(Decimal(1).scaleb(exponent))
    return value


def _flags(estimated: int, missing: int, count: int, expected: int | None) -> int:
    flags = 0
    if estimated:
        flags |= Quality.ESTIMATED
    if missing or (expected is not None and count < expected):
        flags |= Quality.MISSING
    return int(flags)


def _hourly_series(meter_id, channel, start, end) -> Iterator[Point]:
    if interval_energy.is_cumulative(channel):
        yield from _hourly_derived(meter_id, channel, start, end)
        return
    column = VALUE_COLUMNS[channel.profile_column]
    shift = 8 * channel.profile_column
    estimated_bit = int(Quality.ESTIMATED) << shift
    missing_bit = int(Quality.MISSING) << shift
    aggregate = aggregate_of(channel, HOUR)
    period = profile_period(meter_id, channel.profile_group, start, end)
    rows = (
        stored_intervals(meter_id, channel.profile_group, start, end)
        # The interval ending at 01:00 belongs to the hour from 00:00.
        .annotate(
            begins=ExpressionWrapper(F("ts") - ONE_US, output_field=DateTimeField()),
            bucket=Trunc("begins", "hour", tzinfo=local_zone()),
            est=F("quality").bitand(estimated_bit),
            mis=F("quality").bitand(missing_bit),
        )
        .values("bucket")
        .annotate(
            total=Sum(column),
            n=Count(column),
            e=Count(column, filter=~Q(est=0)),
            m=Count("ts", filter=Q(**{f"{column}__isnull": True}) | ~Q(mis=0)),
        )
        .order_by("bucket")
    )
    for row in rows:
        yield Point(
            row["bucket"],
            _bucket_value(row["total"], row["n"], channel, aggregate),
            _flags(row["e"], row["m"], row["n"], _expected(period, row["bucket"], HOUR)),
            row["n"],
        )


def _hourly_derived(meter_id, channel, start, end) -> Iterator[Point]:
    """Hours of a cumulative channel: sums of its derived interval energy."""
    zone = local_zone()
    aggregate = aggregate_of(channel, HOUR)
    period = profile_period(meter_id, channel.profile_group, start, end)

    def hour_of(item) -> datetime:
        return (item[0] - ONE_US).astimezone(zone).replace(minute=0, second=0, microsecond=0)

    points = interval_energy.energy_series(meter_id, channel, start, end)
    for bucket, group in groupby(points, key=hour_of):
        group = list(group)
        present = [v for _, v, _ in group if v is not None]
        total = sum(present) if present else None
        estimated = sum(1 for _, v, f in group if v is not None and f & Quality.ESTIMATED)
        missing = sum(1 for _, v, f in group if v is None or f & Quality.MISSING)
        yield Point(
            bucket,
            _bucket_value(total, len(present), channel, aggregate),
            _flags(estimated, missing, len(present), _expected(period, bucket, HOUR)),
            len(present),
        )


def _rollup_series(meter_id, channel, start, end, resolution) -> Iterator[Point]:
    zone = local_zone()
    first, last = local_day(start + ONE_US, zone), local_day(end, zone)
    aggregate = aggregate_of(channel, resolution)
    period = profile_period(meter_id, channel.profile_group, start, end)
    days = DailyEnergy.objects.filter(
        meter_id=meter_id, channel_id=channel.pk, day__gte=first, day__lte=last
    )
    if resolution == DAY:
        rows = days.order_by("day").values_list("day", "value", "intervals", "estimated")
    else:
        rows = (
            days.annotate(month=TruncMonth("day"))
            .values("month")
            .annotate(v=Sum("value"), n=Sum("intervals"), e=Sum("estimated"))
            .order_by("month")
            .values_list("month", "v", "n", "e")
        )
    for day, total, count, estimated in rows:
        if isinstance(day, datetime):
            day = day.date()
        bucket = _local_midnight(day)
        expected = _expected(period, bucket, resolution)
        yield Point(
            bucket,
            _bucket_value(total, count, channel, aggregate),
            _flags(estimated, 0, count, expected),
            count,
        )


def _register_series(meter_id, channel, start, end, resolution) -> Iterator[Point]:
    rows = (
        RegisterRead.objects.filter(
            meter_id=meter_id, channel_id=channel.pk, read_at__gt=start, read_at__lte=end
        )
        .order_by("read_at")
        .values_list("read_at", "value", "quality")
    )
    points = (
        Point(ts, to_decimal(value, channel.scaler), int(quality or 0))
        for ts, value, quality in rows.iterator(chunk_size=5000)
    )
    if resolution == RAW:
        yield from points
        return
    zone = local_zone()

    def bucket_of(point: Point) -> datetime:
        local = (point.ts - ONE_US).astimezone(zone)
        if resolution == HOUR:
            return local.replace(minute=0, second=0, microsecond=0)
        day = local.date() if resolution == DAY else local.date().replace(day=1)
        return _local_midnight(day)

    for bucket, group in groupby(points, key=bucket_of):
        group = list(group)
        yield Point(bucket, group[-1].value, group[-1].flags, len(group))


# ------------------------------------------------------------------ many meters


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a query result (a table row, an export line)."""

    serial: str
    obis: str
    name: str
    unit: str
    ts: datetime
    value: Decimal | None
    flags: int
    count: int | None
    head_end: bool = False  # the channel is head-end derived (polled registers, no profile)

    @property
    def quality(self) -> str:
        """The flags as words, and "head_end" for a head-end derived series."""
        words = flag_names(self.flags)
        if self.head_end:
            return f"{words},head_end" if words else "head_end"
        return words


@dataclass
class DataQuery:
    """Meters (already scoped and filtered), channels, a range and a resolution."""

    meters: object  # a Meter queryset
    obis: list[str]
    start: datetime
    end: datetime
    resolution: str = AUTO

    def __post_init__(self):
        self.resolution = choose_resolution(self.resolution, self.start, self.end)
        self.start, self.end = bucket_range(self.start, self.end, self.resolution)

    def segments(self) -> Iterator[tuple[Meter, Channel]]:
        """(meter, channel) pairs in result order: by serial, then channel as asked."""
        meters = self.meters.only("pk", "serial", "meter_model_id").order_by("serial")
        by_model: dict[int, list[Channel]] | None = None
        for chunk in _chunks(meters.iterator(chunk_size=2000), 2000):
            if by_model is None or any(m.meter_model_id not in by_model for m in chunk):
                by_model = channels_by_model({m.meter_model_id for m in chunk}, self.obis) | (
                    by_model or {}
                )
            for meter in chunk:
                for channel in by_model.get(meter.meter_model_id, []):
                    yield meter, channel

    def rows(self) -> Iterator[Row]:
        for meter, channel in self.segments():
            for point in series(meter.pk, channel, self.start, self.end, self.resolution):
                yield Row(
                    meter.serial,
                    channel.obis,
                    channel.name,
                    channel.unit,
                    point.ts,
                    point.value,
                    point.flags,
                    point.count,
                    channel.head_end_derived,
                )

    def estimate_rows(self) -> int:
        """About how many rows the result has (decides between a direct and a queued export)."""
        meter_ids = list(self.meters.values_list("pk", flat=True)[:100_000])
        if not meter_ids:
            return 0
        channels = max((len(c) for c in channels_by_model(
            set(self.meters.values_list("meter_model_id", flat=True)), self.obis
        ).values()), default=0)  # fmt: skip
        if self.resolution == RAW:
            stored = stored_intervals(meter_ids, None, self.start, self.end).count()
            return stored * max(channels, 1)
        span = (self.end - self.start).total_seconds()
        per = {HOUR: 3600, DAY: 86400, MONTH: 86400 * 30}[self.resolution]
        return int(len(meter_ids) * channels * max(1, span // per))


def _chunks(iterable, size):
    chunk = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# ------------------------------------------------------------------ pages in key order


def interval_rows_after(
    meters,
    start: datetime,
    end: datetime,
    *,
    after: tuple | None,
    limit: int,
    groups: dict[int, set[int]] | None = None,
) -> list:
    """Stored interval rows (`StoredInterval`: hot and compacted months alike) of `meters`
    (an already scoped Meter queryset) ending in (start, end], in the store's key order
    (meter_id, group, ts), after the key `after`, at most `limit`: one keyset page (the
    readings API). `groups`: {meter model id: store groups} to read (None: every group).

    Read a window of meter ids at a time (the next `WINDOW` of the scope from the position,
    growing fourfold while a window holds too few rows), named by value: PostgreSQL then
    probes both legs of the view by key for those meters only. Through the view with the
    scope as a subquery it unpacked every compacted day of every meter after the position
    and sorted them for each page (the compacted leg's order is not an index's)."""
    out: list = []
    lower, window = (after[0] if after else None), WINDOW
    while len(out) < limit:
        ids = meters.order_by("pk").values_list("pk", "meter_model_id")
        if lower is not None:
            ids = ids.filter(pk__gte=lower) if after else ids.filter(pk__gt=lower)
        ids = list(ids[:window])
        if not ids:
            break
        rows = StoredInterval.objects.filter(
            ts__gt=start, ts__lte=end, **utc_day_bounds(start, end)
        )
        if groups is None:
            rows = rows.filter(meter_id__in=[pk for pk, _model in ids])
        else:
            which = Q(pk__in=[])
            for model_id, model_groups in sorted(groups.items()):
                of_model = [pk for pk, model in ids if model == model_id]
                if of_model:
                    which |= Q(meter_id__in=of_model, group__in=sorted(model_groups))
            rows = rows.filter(which)
        if after is not None:
            rows = rows.filter(pk__gt=after)
        out += rows.order_by("meter_id", "group", "ts")[: limit - len(out)]
        if len(ids) < window:
            break
        lower, after, window = ids[-1][0], None, min(window * 4, WINDOW_MAX)
    return out


def register_reads_after(
    meters,
    start: datetime,
    end: datetime,
    *,
    after: tuple | None,
    limit: int,
    channel_ids: Iterable[int] | None = None,
) -> list:
    """Register reads of `meters` (scoped) read in (start, end], in key order (meter_id,
    channel_id, read_at), after `after`, at most `limit` (`interval_rows_after`'s twin)."""
    rows = RegisterRead.objects.filter(
        meter_id__in=meters.values("pk"), read_at__gt=start, read_at__lte=end
    )
    if channel_ids is not None:
        rows = rows.filter(channel_id__in=sorted(channel_ids))
    if after is not None:
        rows = rows.filter(pk__gt=after)
    return list(rows.order_by("meter_id", "channel_id", "read_at")[:limit])


def events_after(meters, start: datetime, end: datetime, *, after: tuple | None, limit: int,
                 log: str = "", code: int | None = None) -> list:  # fmt: skip
    """Event records of `meters` (scoped) stamped in [start, end) (instants: an event at
    midnight belongs to the day it starts), in key order (meter_id, log, ts, code), after
    `after`, at most `limit`."""
    rows = EventRecord.objects.filter(meter_id__in=meters.values("pk"), ts__gte=start, ts__lt=end)
    if log:
        rows = rows.filter(log=log)
    if code is not None:
        rows = rows.filter(code=code)
    if after is not None:
        rows = rows.filter(pk__gt=after)
    return list(rows.order_by("meter_id", "log", "ts", "code")[:limit])
