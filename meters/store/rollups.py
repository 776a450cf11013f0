"""Daily and hourly energy per meter and profile channel, on the utility's local day.

Ingest calls `refresh(days_touched(...))` after writing intervals: every affected
(meter, local day) is recomputed from the stored intervals and upserted -- its day total
(`DailyEnergy`) and its 24 local hours (`HourlyEnergy`) -- so a retry or a late interval
never double-counts. Days are the utility's local days (`meters.store.days`): an interval
belongs to the day, and to the local hour, in which it *ends*. Interval channels are summed
in SQL (on PostgreSQL both rollups from ONE pass over the intervals: grouped by hour, then
the hours summed to the day); cumulative ones (registers captured by the profile) sum the
differences of their captures, derived by `meters.store.interval_energy`, and SQLite's
hours are summed from the same series in Python. Everything runs in the caller's
transaction: a killed batch leaves both rollups as they were.

`missing_hours` / `fill_missing_hours` find and fill days that have a daily row but no
hourly one (days written before the hourly rollup existed, or by a previous release during
a rolling upgrade); `manage.py rebuild_rollups --missing-hours` and the compaction task run
them, a block of meters per transaction.

`feeder_daily_energy` answers "a day's energy per feeder for a month" from the rollup.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Exists, OuterRef

from amisite import pgbulk
from meters.choices import Accumulation, ChannelKind, NodeKind
from meters.models import Channel, GridNode, Meter

from .compaction import VIEW, lateral_sql, utc_day
from .days import ONE_US, day_bounds, local_day, local_zone
from .interval_energy import cumulative_channels, energy_codes, energy_series
from .models import HOURS, DailyEnergy, HourlyEnergy, RegisterRead
from .quality import COLUMNS_PER_GROUP, Quality


def days_touched(spans: dict[int, tuple[datetime, datetime]]) -> set[tuple[int, date]]:
    """(meter, local day) pairs covered by each meter's (first, last) interval end."""
    zone = local_zone()
    pairs = set()
    for meter_id, (first, last) in spans.items():
        day, end = local_day(first, zone), local_day(last, zone)
        while day <= end:
            pairs.add((meter_id, day))
            day += timedelta(days=1)
    return pairs


def _stored_rows(days: str) -> str:
    """Every stored interval (hot and compacted) of each (meter_id, lo, hi) row of `days`,
    as `r` (PostgreSQL: a LATERAL subquery on both tables' keys; SQLite: the view)."""
    if connection.vendor == "postgresql":
        return f"CROSS JOIN LATERAL ({lateral_sql(days)}) r"
    return (
        f"JOIN {VIEW} r ON r.meter_id = {days}.meter_id AND r.ts > {days}.lo AND r.ts <= {days}.hi"
    )


def _aggregates(width: int, source: str = "r") -> list[str]:
    """Per column: the sum, the values and the estimated values of `source`'s rows."""
    out = []
    for c in range(width):
        est = int(Quality.ESTIMATED) << (8 * c)
        out.append(
            f"SUM({source}.v{c}) AS s{c}, COUNT({source}.v{c}) AS n{c}, SUM(CASE WHEN "
            f"{source}.v{c} IS NOT NULL AND ({source}.q & {est}) <> 0 THEN 1 ELSE 0 END) AS e{c}"
        )
    return out


def _pick(prefix: str, width: int, source: str = "a") -> str:
    """The figure of each row's channel: `source`.{prefix}{profile column}."""
    whens = " ".join(f"WHEN {c} THEN {source}.{prefix}{c}" for c in range(width))
    return f"CASE c.profile_column {whens} END"


def _model_of(source: str) -> str:
    """The meter model of each row of `source` as `m.meter_model_id`: one primary-key probe
    per row (LATERAL ... LIMIT 1). A plain JOIN to the meter table was planned, while that
    table had no statistics, as a hash of every meter x its channels (399,000 rows at
    100,000 meters) for each batch of 250: a cost growing with the fleet. (SQLite: the
    plain JOIN.)"""
    if connection.vendor != "postgresql":
        return f"JOIN {Meter._meta.db_table} m ON m.id = {source}.meter_id"
    return (
        f"CROSS JOIN LATERAL (SELECT mm.meter_model_id FROM {Meter._meta.db_table} mm"
        f" WHERE mm.id = {source}.meter_id LIMIT 1) m"
    )


def _channels_of(source: str) -> str:
    """JOIN each rolled-up (meter, grp) row of `source` to the meter's interval channels."""
    return f"""
        {_model_of(source)}
        JOIN {Channel._meta.db_table} c ON c.meter_model_id = m.meter_model_id
            AND c.profile_group = {source}.grp AND c.profile_column IS NOT NULL
            AND c.accumulation <> '{Accumulation.CUMULATIVE.value}'"""


def _daily_insert(source: str, width: int) -> str:
    daily = DailyEnergy._meta.db_table
    return f"""
        INSERT INTO {daily} (meter_id, channel_id, day, value, intervals, estimated)
        SELECT a.meter_id, c.id, a.day, {_pick("s", width)}, {_pick("n", width)},
            {_pick("e", width)}
        FROM {source} a {_channels_of("a")}
        WHERE {_pick("n", width)} > 0
        ON CONFLICT (meter_id, channel_id, day) DO UPDATE SET
            value = excluded.value, intervals = excluded.intervals,
            estimated = excluded.estimated
        WHERE {daily}.value <> excluded.value OR {daily}.intervals <> excluded.intervals
            OR {daily}.estimated <> excluded.estimated
    """


def _refresh_sql(values: str, width: int) -> str:
    """The daily rollup: one pass over the affected intervals (per column sum, count,
    estimated), then a row per interval channel of the meter's model (SQLite)."""
    return f"""
        WITH d (meter_id, day, lo, hi) AS ({values}),
        a AS (
            SELECT d.meter_id, d.day, r.grp, {", ".join(_aggregates(width))}
            FROM d {_stored_rows("d")}
            GROUP BY d.meter_id, d.day, r.grp
        )
        {_daily_insert("a", width)}
    """


def _zone_literal() -> str:
    name = str(local_zone())
    if not name.replace("/", "").replace("_", "").replace("-", "").replace("+", "").isalnum():
        raise ValueError(f"unexpected time zone name {name!r}")
    return f"'{name}'"


def _hours_sql(head: str, source: str, meter: str, day: str, width: int) -> str:
    """Both rollups in one pass (PostgreSQL): the stored rows `r` of `source` grouped by
    (`meter`, local `day`, group, local hour) as `h`; the hourly rows from `h`, the daily
    rows from `h` summed over the day."""
    hourly = HourlyEnergy._meta.db_table
    hour_of = f"extract(hour FROM (r.ts - interval '1 microsecond') AT TIME ZONE {_zone_literal()})"
    day_sums = ", ".join(f"SUM(h.s{c}) AS s{c}, SUM(h.n{c}) AS n{c}, SUM(h.e{c}) AS e{c}"
                         for c in range(width))  # fmt: skip
    hour_columns = ", ".join(
        f"SUM(CASE WHEN h.hour = {k} THEN {_pick('s', width, 'h')} END)" for k in range(24)
    )
    changed = " OR ".join(f"{hourly}.{n} IS DISTINCT FROM excluded.{n}" for n in HOURS)
    return f"""
        {head}
        h AS (
            SELECT {meter} AS meter_id, {day} AS day, r.grp, {hour_of}::integer AS hour,
                {", ".join(_aggregates(width))}
            FROM {source}
            GROUP BY 1, 2, 3, 4
        ),
        hours AS (
            INSERT INTO {hourly} (meter_id, channel_id, day, {", ".join(HOURS)})
            SELECT h.meter_id, c.id, h.day, {hour_columns}
            FROM h {_channels_of("h")}
            GROUP BY h.meter_id, c.id, h.day
            HAVING SUM({_pick("n", width, "h")}) > 0
            ON CONFLICT (meter_id, channel_id, day) DO UPDATE SET
                {", ".join(f"{n} = excluded.{n}" for n in HOURS)}
            WHERE {changed}
        ),
        a AS (SELECT h.meter_id, h.day, h.grp, {day_sums} FROM h GROUP BY 1, 2, 3)
        {_daily_insert("a", width)}
    """


def _refresh_hours_sql(values: str, width: int) -> str:
    """Both rollups of the (meter, day, lo, hi) rows `values` (ingest, late reads): each
    pair's intervals read on their keys (LATERAL)."""
    return _hours_sql(
        f"WITH d (meter_id, day, lo, hi) AS ({values}),", f"d {_stored_rows('d')}",
        "d.meter_id", "d.day", width,
    )  # fmt: skip


def refresh_range(first_meter: int, stop_meter: int, first_day: date, last_day: date) -> None:
    """Recompute both rollups of meters `first_meter` <= id < `stop_meter` over local days
    `first_day`..`last_day`, in the caller's transaction: what `refresh` does for every
    pair, in one set-based scan of the range (PostgreSQL; about 7 times cheaper than a
    LATERAL read per pair when whole months are filled, e.g. after an upgrade)."""
    pairs = {
        (m, first_day + timedelta(days=i))
        for m in Meter.objects.filter(pk__gte=first_meter, pk__lt=stop_meter).values_list(
            "pk", flat=True
        )
        for i in range((last_day - first_day).days + 1)
    }
    if connection.vendor != "postgresql":
        refresh(pairs)
        return
    zone = local_zone()
    start, end = day_bounds(first_day, zone)[0], day_bounds(last_day, zone)[1]
    local = f"((r.ts - interval '1 microsecond') AT TIME ZONE {_zone_literal()})::date"
    source = (
        f"{VIEW} r WHERE r.meter_id >= %s AND r.meter_id < %s AND r.ts > %s AND r.ts <= %s"
        " AND r.day >= %s AND r.day <= %s"
    )
    sql = _hours_sql("WITH", source, "r.meter_id", local, COLUMNS_PER_GROUP)
    params = [first_meter, stop_meter, start, end, utc_day(start), utc_day(end)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    refresh_cumulative(pairs)


def refresh(
    pairs: set[tuple[int, date]],
    width: int = COLUMNS_PER_GROUP,
    cumulative: dict[int, list[Channel]] | None = None,
) -> None:
    """Recompute the daily and hourly energy of these (meter, local day) pairs from the
    intervals, in the caller's transaction.

    `cumulative`: per meter its cumulative profile channels, when the caller knows them
    (ingest does: an interval-only batch then costs no query here); None: looked up.
    """
    if not pairs:
        return
    if connection.vendor == "postgresql":
        _execute_days(pairs, lambda values: _refresh_hours_sql(values, width))
    else:
        _execute_days(pairs, lambda values: _refresh_sql(values, width))
        refresh_hours_portable(pairs)
    refresh_cumulative(pairs, cumulative)


def _hourly_row(meter_id: int, channel_id: int, day: date, hours: list) -> HourlyEnergy:
    return HourlyEnergy(
        meter_id=meter_id, channel_id=channel_id, day=day, **dict(zip(HOURS, hours, strict=True))
    )


def _save_hours(rows: list[HourlyEnergy]) -> None:
    HourlyEnergy.objects.bulk_create(
        rows,
        batch_size=500,
        update_conflicts=True,
        unique_fields=["meter", "channel", "day"],
        update_fields=HOURS,
    )


def refresh_hours_portable(pairs: set[tuple[int, date]]) -> None:
    """The hourly rollup of interval channels summed in Python (databases without time
    zones in SQL: SQLite), from the same series every reader gets."""
    meter_ids = {m for m, _ in pairs}
    model_of = dict(Meter.objects.filter(pk__in=meter_ids).values_list("pk", "meter_model_id"))
    channels: dict[int, list[Channel]] = defaultdict(list)
    for channel in Channel.objects.filter(
        meter_model_id__in=set(model_of.values()),
        kind=ChannelKind.PROFILE,
        profile_column__isnull=False,
    ).exclude(accumulation=Accumulation.CUMULATIVE):
        channels[channel.meter_model_id].append(channel)
    days_of: dict[int, set[date]] = defaultdict(set)
    for meter_id, day in pairs:
        days_of[meter_id].add(day)
    zone = local_zone()
    rows = []
    for meter_id, days in days_of.items():
        for channel in channels.get(model_of.get(meter_id), ()):
            for day, (*_, hours) in energy_days(meter_id, channel, days, zone).items():
                rows.append(_hourly_row(meter_id, channel.pk, day, hours))
    _save_hours(rows)


def refresh_cumulative(
    pairs: set[tuple[int, date]], cumulative: dict[int, list[Channel]] | None = None
) -> None:
    """Daily and hourly energy of cumulative profile channels: the sums of their derived
    intervals.

    A capture's energy depends on the capture before it, so new captures also change the
    first interval of the day after them: that day is recomputed too.
    """
    if cumulative is None:
        meter_ids = {m for m, _ in pairs}
        model_of = dict(Meter.objects.filter(pk__in=meter_ids).values_list("pk", "meter_model_id"))
        by_model = cumulative_channels(model_of.values())
        cumulative = {m: by_model[model] for m, model in model_of.items() if model in by_model}
    if not cumulative:
        return
    days_of: dict[int, set[date]] = defaultdict(set)
    for meter_id, day in pairs:
        if meter_id in cumulative:
            days_of[meter_id].update((day, day + timedelta(days=1)))
    zone = local_zone()
    rows, hourly = [], []
    for meter_id, days in days_of.items():
        for channel in cumulative[meter_id]:
            for day, (value, count, estimated, hours) in energy_days(
                meter_id, channel, days, zone
            ).items():
                rows.append(
                    DailyEnergy(
                        meter_id=meter_id,
                        channel_id=channel.pk,
                        day=day,
                        value=value,
                        intervals=count,
                        estimated=estimated,
                    )
                )
                hourly.append(_hourly_row(meter_id, channel.pk, day, hours))
    DailyEnergy.objects.bulk_create(
        rows,
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["meter", "channel", "day"],
        update_fields=["value", "intervals", "estimated"],
    )
    _save_hours(hourly)


def energy_days(
    meter_id: int, channel: Channel, days: set[date], zone: ZoneInfo | None = None
) -> dict[date, tuple[int, int, int, list[int | None]]]:
    """Per local day: (sum, values, estimated values, sum per local hour or None) of a
    channel's interval energy (derived for a cumulative channel).

    Days with no value are left out (a day without data is not zero).
    """
    zone = zone or local_zone()
    ordered = sorted(days)
    if not ordered:
        return {}
    start, end = day_bounds(ordered[0], zone)[0], day_bounds(ordered[-1], zone)[1]
    totals: dict[date, list] = {}
    for ts, value, flags in energy_series(meter_id, channel, start, end):
        if value is None:
            continue
        local = (ts - ONE_US).astimezone(zone)
        day = local.date()
        if day not in days:
            continue
        total = totals.setdefault(day, [0, 0, 0, [None] * 24])
        total[0] += value
        total[1] += 1
        total[2] += 1 if flags & Quality.ESTIMATED else 0
        hours = total[3]
        hours[local.hour] = value + (hours[local.hour] or 0)
    return {day: tuple(total) for day, total in totals.items()}


def missing_hours(
    first_meter: int, stop_meter: int, first_day: date | None = None, last_day: date | None = None
) -> set[tuple[int, date]]:
    """(meter, local day) pairs of meters `first_meter` <= id < `stop_meter` whose profile
    channel has a daily row but no hourly row (days rolled up before the hourly rollup
    existed, or by a previous release during a rolling upgrade)."""
    hours = HourlyEnergy.objects.filter(
        meter_id=OuterRef("meter_id"), channel_id=OuterRef("channel_id"), day=OuterRef("day")
    )
    days = DailyEnergy.objects.filter(
        meter_id__gte=first_meter, meter_id__lt=stop_meter, channel__kind=ChannelKind.PROFILE
    )
    if first_day is not None:
        days = days.filter(day__gte=first_day)
    if last_day is not None:
        days = days.filter(day__lte=last_day)
    return set(days.filter(~Exists(hours)).values_list("meter_id", "day").distinct())


def fill_missing_hours(
    first_meter: int, stop_meter: int, first_day: date | None = None, last_day: date | None = None
) -> int:
    """Roll up the hours of `missing_hours(...)` (and their days again) in ONE transaction:
    a killed run leaves the block either filled or untouched. Returns the days filled."""
    with transaction.atomic():
        pairs = missing_hours(first_meter, stop_meter, first_day, last_day)
        refresh(pairs)
    return len(pairs)


def _register_sql(values: str, channel_ids: list[int]) -> str:
    reg = RegisterRead._meta.db_table
    daily = DailyEnergy._meta.db_table

    def last(bound: str) -> str:
        return (
            f"(SELECT r.value FROM {reg} r WHERE r.meter_id = d.meter_id "
            f"AND r.channel_id = c.id AND r.read_at <= d.{bound} "
            "ORDER BY r.read_at DESC LIMIT 1)"
        )

    reads = (
        f"(SELECT COUNT(*) FROM {reg} r WHERE r.meter_id = d.meter_id AND r.channel_id = c.id "
        "AND r.read_at > d.lo AND r.read_at <= d.hi)"
    )
    ids = ", ".join(str(int(i)) for i in channel_ids)
    return f"""
        WITH d (meter_id, day, lo, hi) AS ({values}),
        x AS (
            SELECT d.meter_id, c.id AS channel_id, d.day, {last("hi")} - {last("lo")} AS value,
                {reads} AS reads
            FROM d {_model_of("d")}
            JOIN {Channel._meta.db_table} c ON c.meter_model_id = m.meter_model_id
            WHERE c.id IN ({ids})
        )
        INSERT INTO {daily} (meter_id, channel_id, day, value, intervals, estimated)
        SELECT meter_id, channel_id, day, value, reads, 0 FROM x
        WHERE value IS NOT NULL AND reads > 0
        ON CONFLICT (meter_id, channel_id, day) DO UPDATE SET
            value = excluded.value, intervals = excluded.intervals
        WHERE {daily}.value <> excluded.value OR {daily}.intervals <> excluded.intervals
    """


def refresh_registers(pairs: set[tuple[int, date]], channel_ids: list[int]) -> None:
    """Daily energy of cumulative registers: the last read of the day minus the last read
    before it (`intervals` holds the number of reads in the day). Each read also changes
    the next day's figure, so pass both days."""
    if pairs and channel_ids:
        _execute_days(pairs, lambda values: _register_sql(values, channel_ids))


def _execute_days(pairs: set[tuple[int, date]], make_sql) -> None:
    zone = local_zone()
    bounds: dict[date, tuple[datetime, datetime]] = {}
    rows = []
    for meter_id, day in sorted(pairs):
        if day not in bounds:
            bounds[day] = day_bounds(day, zone)
        rows.append((meter_id, day, *bounds[day]))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            pgbulk.execute_rows(
                cursor, make_sql("%s"), rows, ["bigint", "date", "timestamptz", "timestamptz"]
            )
            return
        ops = connection.ops
        for i in range(0, len(rows), 200):
            chunk = rows[i : i + 200]
            params = []
            for meter_id, day, lo, hi in chunk:
                params += [
                    meter_id,
                    ops.adapt_datefield_value(day),
                    ops.adapt_datetimefield_value(lo),
                    ops.adapt_datetimefield_value(hi),
                ]
            cursor.execute(
                make_sql("VALUES " + ", ".join(["(%s, %s, %s, %s)"] * len(chunk))), params
            )


def feeder_daily_energy(
    obis: str, first_day: date, last_day: date, feeders=None
) -> dict[tuple[int, date], Decimal]:
    """Energy of a quantity per (feeder, local day), from the daily rollup.

    `obis` names an energy quantity: a meter counts it through its profile channel of that
    quantity in either style (`1-0:1.29.0` interval or `1-0:1.8.0` cumulative captures).
    Any other code sums the daily rows of channels with exactly that code.
    `feeders`: GridNode queryset (e.g. scoped by `restrict(user)`); default all feeders.
    A feeder's meters are those whose service point lies in its subtree (path prefix).
    """
    codes = energy_codes(obis)
    feeders = GridNode.objects.filter(kind=NodeKind.FEEDER) if feeders is None else feeders
    feeder_paths = dict(feeders.values_list("path", "pk"))
    if not feeder_paths:
        return {}
    grid = GridNode._meta.db_table
    sql = f"""
        SELECT f.id, d.day, c.scaler, SUM(d.value)
        FROM {DailyEnergy._meta.db_table} d
        JOIN {Channel._meta.db_table} c ON c.id = d.channel_id
        JOIN {Meter._meta.db_table} m ON m.id = d.meter_id
        JOIN {grid} sp ON sp.id = m.service_point_id
        JOIN {grid} f ON f.kind = %s AND sp.path LIKE f.path || '%%'
        WHERE {_quantity_filter(len(codes))} AND d.day >= %s AND d.day <= %s
            AND f.id IN ({", ".join(["%s"] * len(feeder_paths))})
        GROUP BY f.id, d.day, c.scaler
    """
    ops = connection.ops
    params = [
        NodeKind.FEEDER,
        *_quantity_params(codes),
        ops.adapt_datefield_value(first_day),
        ops.adapt_datefield_value(last_day),
        *feeder_paths.values(),
    ]
    out: dict[tuple[int, date], Decimal] = defaultdict(Decimal)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for feeder_id, day, scaler, total in cursor.fetchall():
            if isinstance(day, str):
                day = date.fromisoformat(day)
            out[(feeder_id, day)] += Decimal(int(total)).scaleb(scaler)
    return dict(out)


def _quantity_filter(n_codes: int) -> str:
    if n_codes == 1:
        return "c.obis = %s"
    return f"c.kind = %s AND c.obis IN ({', '.join(['%s'] * n_codes)})"


def _quantity_params(codes: list[str]) -> list:
    return codes if len(codes) == 1 else [ChannelKind.PROFILE, *codes]
