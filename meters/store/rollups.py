"""Daily energy per meter and profile channel, on the utility's local day.

Ingest calls `refresh(days_touched(...))` after writing intervals: every affected
(meter, local day) is recomputed from the interval table in ONE set-based statement and
upserted, so a retry or a late interval never double-counts. Days are the utility's local
days (`meters.store.days`): an interval belongs to the day in which it *ends*. Interval
channels are summed in SQL; cumulative ones (registers captured by the profile) sum the
differences of their captures, derived by `meters.store.interval_energy`.

`feeder_daily_energy` answers "a day's energy per feeder for a month" from the rollup.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection

from amisite import pgbulk
from meters.choices import Accumulation, ChannelKind, NodeKind
from meters.models import Channel, GridNode, Meter

from .compaction import VIEW, lateral_sql
from .days import day_bounds, local_day, local_zone
from .interval_energy import cumulative_channels, energy_codes, energy_series
from .models import DailyEnergy, RegisterRead
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


def _refresh_sql(values: str, width: int) -> str:
    """One pass over the affected intervals: per column sum, count, estimated; then a row
    per profile channel of the meter's model."""
    aggregates = []
    for c in range(width):
        est = int(Quality.ESTIMATED) << (8 * c)
        aggregates.append(
            f"SUM(r.v{c}) AS s{c}, COUNT(r.v{c}) AS n{c}, "
            f"SUM(CASE WHEN r.v{c} IS NOT NULL AND (r.q & {est}) <> 0 THEN 1 ELSE 0 END) AS e{c}"
        )

    def pick(prefix: str) -> str:
        whens = " ".join(f"WHEN {c} THEN a.{prefix}{c}" for c in range(width))
        return f"CASE c.profile_column {whens} END"

    daily = DailyEnergy._meta.db_table
    return f"""
        WITH d (meter_id, day, lo, hi) AS ({values}),
        a AS (
            SELECT d.meter_id, d.day, r.grp, {", ".join(aggregates)}
            FROM d {_stored_rows("d")}
            GROUP BY d.meter_id, d.day, r.grp
        )
        INSERT INTO {daily} (meter_id, channel_id, day, value, intervals, estimated)
        SELECT a.meter_id, c.id, a.day, {pick("s")}, {pick("n")}, {pick("e")}
        FROM a
        JOIN {Meter._meta.db_table} m ON m.id = a.meter_id
        JOIN {Channel._meta.db_table} c ON c.meter_model_id = m.meter_model_id
            AND c.profile_group = a.grp AND c.profile_column IS NOT NULL
            AND c.accumulation <> '{Accumulation.CUMULATIVE.value}'
        WHERE {pick("n")} > 0
        ON CONFLICT (meter_id, channel_id, day) DO UPDATE SET
            value = excluded.value, intervals = excluded.intervals,
            estimated = excluded.estimated
        WHERE {daily}.value <> excluded.value OR {daily}.intervals <> excluded.intervals
            OR {daily}.estimated <> excluded.estimated
    """


def refresh(
    pairs: set[tuple[int, date]],
    width: int = COLUMNS_PER_GROUP,
    cumulative: dict[int, list[Channel]] | None = None,
) -> None:
    """Recompute the daily energy of these (meter, local day) pairs from the intervals.

    `cumulative`: per meter its cumulative profile channels, when the caller knows them
    (ingest does: an interval-only batch then costs no query here); None: looked up.
    """
    if pairs:
        _execute_days(pairs, lambda values: _refresh_sql(values, width))
        refresh_cumulative(pairs, cumulative)


def refresh_cumulative(
    pairs: set[tuple[int, date]], cumulative: dict[int, list[Channel]] | None = None
) -> None:
    """Daily energy of cumulative profile channels: the sum of their derived intervals.

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
    rows = []
    for meter_id, days in days_of.items():
        for channel in cumulative[meter_id]:
            for day, (value, count, estimated) in cumulative_days(
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
    DailyEnergy.objects.bulk_create(
        rows,
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["meter", "channel", "day"],
        update_fields=["value", "intervals", "estimated"],
    )


def cumulative_days(
    meter_id: int, channel: Channel, days: set[date], zone: ZoneInfo | None = None
) -> dict[date, tuple[int, int, int]]:
    """Per local day: (sum, values, estimated values) of a channel's derived interval energy.

    Days with no value are left out (a day without data is not zero).
    """
    zone = zone or local_zone()
    ordered = sorted(days)
    if not ordered:
        return {}
    start, end = day_bounds(ordered[0], zone)[0], day_bounds(ordered[-1], zone)[1]
    totals: dict[date, list[int]] = {}
    for ts, value, flags in energy_series(meter_id, channel, start, end):
        day = local_day(ts, zone)
        if value is None or day not in days:
            continue
        total = totals.setdefault(day, [0, 0, 0])
        total[0] += value
        total[1] += 1
        total[2] += 1 if flags & Quality.ESTIMATED else 0
    return {day: (v, n, e) for day, (v, n, e) in totals.items()}


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
            FROM d JOIN {Meter._meta.db_table} m ON m.id = d.meter_id
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
