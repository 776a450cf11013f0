"""Customer patterns: typical daily load shapes, clusters of customers by shape, and the
customers whose shape changed (issue 16).

For every customer meter in the reader's scope (a meter at a service point; optionally a grid
subtree and one customer class, `Customer.tariff_code`), over a period of local days:

* its *shape*: the mean import energy per local hour of the day, weekdays and weekends apart
  (48 figures; an interval belongs to the hour in which it ends), divided by the mean of
  the 48, so 1.0 is the meter's own average hour and shapes of a small flat and a bakery
  compare. A day type without data takes the other's hours (a period of weekdays only); a
  meter without a single interval, or none with energy, has no shape and is counted apart;
* clusters: k-means (scikit-learn, fixed seed: the same data gives the same clusters) of
  the shapes into `k` groups (2 to 12, default 4), numbered by size, each named after its
  weekday peak hour and how high the peak stands over the average hour; a meter's distance
  to its cluster's centre says how typical it is;
* the typical shape per customer class: the mean shape of the class's meters;
* a change: the same shape over the period of equal length before, compared by the share of
  the day's energy that moved hours (half the sum of absolute differences of the two shapes
  as fractions of the day: 0 = the same, 1 = no energy in common hours). At or above
  `AMI_PATTERN_CHANGE_SHARE` (default 0.25) the meter is flagged: a revenue-protection hint
  (a bypass at night, a new load, a vacant house) for a person to look at.

The period before is the same number of local days before the first (across a DST change
an hour longer or shorter than the period, as days are).

Energy is read from the hourly rollup (`meters.store.HourlyEnergy`, kept by ingest beside
the daily one, from the same intervals, derived for cumulative profiles), per chunk of
meters in one grouped statement for both periods: per meter, period and day type 24 hour
sums and the number of days with each hour. An hour's days count the days that have a
value in it. Grouping every interval by hour at report time cost PostgreSQL ~900 s for
100,000 customers x two months (bench/patterns.py); the rollup holds 24 figures a day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import numpy as np
from django.conf import settings
from django.db.models import BooleanField, Count, ExpressionWrapper, FloatField, Q, Sum
from django.db.models.functions import Cast

from meters.choices import ChannelKind
from meters.models import Channel, GridNode, Meter
from meters.store import HOURS, HourlyEnergy
from meters.store.interval_energy import energy_codes
from meters.store.query import select_meters

from .billing import Period

SLOTS = 48  # 24 weekday hours, then 24 weekend hours
IMPORT = "1-0:1.29.0*255"
CHUNK = 1000
K_DEFAULT, K_MIN, K_MAX = 4, 2, 12
NO_CLASS = "(none)"


def change_share() -> float:
    return float(getattr(settings, "AMI_PATTERN_CHANGE_SHARE", "0.25"))


@dataclass
class MeterPattern:
    meter: Meter
    customer_class: str
    shape: np.ndarray | None = None  # 48 figures, mean 1.0
    previous: np.ndarray | None = None
    energy: Decimal | None = None  # Wh over the period (import)
    previous_energy: Decimal | None = None
    cluster: int | None = None  # 1 = the largest
    distance: float | None = None  # to its cluster's centre
    change: float | None = None  # share of the day's energy that moved hours

    @property
    def changed(self) -> bool:
        return self.change is not None and self.change >= change_share()

    @property
    def flags(self) -> list[str]:
        out = []
        if self.shape is None:
            out.append("no intervals in the period")
        elif self.previous is None:
            out.append("no intervals in the period before")
        if self.changed:
            out.append("pattern changed")
        return out


@dataclass
class Cluster:
    number: int
    label: str
    meters: int
    shape: np.ndarray
    classes: dict[str, int] = field(default_factory=dict)


@dataclass
class Analysis:
    period: Period
    k: int
    patterns: list[MeterPattern]
    clusters: list[Cluster]
    classes: dict[str, np.ndarray]  # class -> mean shape

    @property
    def shaped(self) -> int:
        return sum(1 for p in self.patterns if p.shape is not None)

    @property
    def changed(self) -> list[MeterPattern]:
        return sorted(
            (p for p in self.patterns if p.changed), key=lambda p: (-p.change, p.meter.serial)
        )


def parse_k(text: str | None) -> int:
    """The number of clusters asked for; ValueError when it is not 2..12."""
    if not text:
        return K_DEFAULT
    if not text.isdigit() or not K_MIN <= int(text) <= K_MAX:
        raise ValueError(f"the number of clusters is {K_MIN} to {K_MAX}")
    return int(text)


def customer_meters(user, *, node: GridNode | None = None, customer_class: str = ""):
    """The reader's meters at service points (a grid subtree, a class), by serial."""
    meters = select_meters(Meter.objects.restrict(user, "view"), node=node).filter(
        service_point__isnull=False
    )
    if customer_class == NO_CLASS:
        meters = meters.exclude(service_point__customers__tariff_code__gt="")
    elif customer_class:
        meters = meters.filter(service_point__customers__tariff_code=customer_class)
    return meters.select_related("service_point").order_by("serial").distinct()


def classes_of(meter_ids) -> dict[int, str]:
    out: dict[int, str] = {}
    rows = Meter.objects.filter(pk__in=meter_ids).values_list(
        "pk", "service_point__customers__tariff_code"
    )
    for pk, tariff in rows.order_by("pk", "service_point__customers__tariff_code"):
        if tariff and pk not in out:
            out[pk] = tariff
    return {pk: out.get(pk, NO_CLASS) for pk in meter_ids}


def class_names(user) -> list[str]:
    """The customer classes among the reader's meters (for the filter)."""
    names = (
        Meter.objects.restrict(user, "view")
        .exclude(service_point__customers__tariff_code="")
        .exclude(service_point__customers__tariff_code__isnull=True)
        .values_list("service_point__customers__tariff_code", flat=True)
        .distinct()
    )
    return sorted(set(names))


# ------------------------------------------------------------------ reading the energy


def _import_channels(model_ids) -> dict[int, Channel]:
    """Per meter model its import energy profile channel (interval style first)."""
    codes = energy_codes(IMPORT)
    out: dict[int, Channel] = {}
    channels = Channel.objects.filter(
        meter_model_id__in=set(model_ids),
        kind=ChannelKind.PROFILE,
        obis__in=codes,
        profile_column__isnull=False,
    )
    for channel in sorted(channels, key=lambda c: codes.index(c.obis)):
        out.setdefault(channel.meter_model_id, channel)
    return out


# float8 in SQL: the driver makes a Decimal of every numeric, ~40 % of the read's Python
_SUMS = {f"s{k}": Cast(Sum(name), FloatField()) for k, name in enumerate(HOURS)}
_DAYS = {f"n{k}": Count(name) for k, name in enumerate(HOURS)}


def _energy(meters: list[Meter], period: Period, before: Period) -> tuple[dict, dict]:
    """({meter: (energy per slot, days per slot, scaler)} of `period`, the same of `before`)
    from the hourly rollup: per meter, period and day type 24 sums of hours and 24 counts
    of the days that have the hour, in ONE grouped statement for the chunk."""
    channels = _import_channels(m.meter_model_id for m in meters)
    chosen = {m.pk: channels[m.meter_model_id] for m in meters if m.meter_model_id in channels}
    if not chosen:
        return {}, {}
    rows = (
        HourlyEnergy.objects.filter(
            meter_id__in=list(chosen),
            channel_id__in={c.pk for c in chosen.values()},
            day__gte=before.first,
            day__lte=period.last,
        )
        .annotate(
            now=ExpressionWrapper(Q(day__gte=period.first), output_field=BooleanField()),
            weekend=ExpressionWrapper(Q(day__iso_week_day__gte=6), output_field=BooleanField()),
        )
        .values("meter_id", "channel_id", "now", "weekend")
        .annotate(**_SUMS, **_DAYS)
        .values_list("meter_id", "channel_id", "now", "weekend", *_SUMS, *_DAYS)
    )
    rows = [r for r in rows if chosen[r[0]].pk == r[1]]  # a model's other import channel
    figures = np.array([r[4:] for r in rows], dtype=float).reshape(len(rows), 48)
    figures = np.nan_to_num(figures)  # an hour without a value in any day: no energy
    out: tuple[dict, dict] = ({}, {})
    for (meter_id, _channel, now, weekend, *_), row in zip(rows, figures, strict=True):
        energy, days, scaler = out[0 if now else 1].setdefault(
            meter_id, (np.zeros(SLOTS), np.zeros(SLOTS), chosen[meter_id].scaler)
        )
        slots = slice(24, 48) if weekend else slice(0, 24)
        energy[slots] = row[:24]
        days[slots] = row[24:]
    return out


def shape_of(energy: np.ndarray, days: np.ndarray) -> np.ndarray | None:
    """The 48-figure shape (mean 1.0) from energy and day counts per slot; None without
    energy. A day type without data takes the other's hours."""
    mean = np.divide(energy, days, out=np.zeros(SLOTS), where=days > 0)
    weekday, weekend = mean[:24], mean[24:]
    if not days[:24].any():
        weekday = weekend
    if not days[24:].any():
        weekend = weekday
    mean = np.concatenate([weekday, weekend])
    if not days.any() or mean.sum() <= 0:
        return None
    return mean / mean.mean()


def moved_share(a: np.ndarray, b: np.ndarray) -> float:
    """Half the L1 distance of two shapes as fractions of their day: 0 same, 1 disjoint."""
    return float(0.5 * np.abs(a / a.sum() - b / b.sum()).sum())


# ------------------------------------------------------------------ the analysis


def _label(shape: np.ndarray) -> str:
    weekday = shape[:24]
    hour = int(weekday.argmax())
    peak = weekday.max() / weekday.mean() if weekday.mean() > 0 else 0
    if peak < 1.3:
        return f"flat (peak {hour:02d}:00 ×{peak:.1f})"
    part = (
        "night" if hour < 6 else "morning" if hour < 11 else "daytime" if hour < 17
        else "evening" if hour < 22 else "night"
    )  # fmt: skip
    return f"{part} peak {hour:02d}:00 ×{peak:.1f}"


def _cluster(patterns: list[MeterPattern], k: int) -> list[Cluster]:
    shaped = [p for p in patterns if p.shape is not None]
    if not shaped:
        return []
    # scikit-learn is imported here, when a report clusters: at the module's top it was
    # ~1.5-2 s of every process's start (web and Celery workers, manage.py, make run),
    # since the admin and the report engine import this module.
    from sklearn.cluster import KMeans

    data = np.vstack([p.shape for p in shaped])
    k = min(k, len({row.tobytes() for row in data}))
    model = KMeans(n_clusters=k, n_init=4, random_state=0).fit(data)
    sizes = np.bincount(model.labels_, minlength=k)
    # number clusters by size (largest first), then by their centre for a stable order
    order = sorted(range(k), key=lambda c: (-sizes[c], tuple(model.cluster_centers_[c])))
    number = {c: n + 1 for n, c in enumerate(order)}
    distances = np.linalg.norm(data - model.cluster_centers_[model.labels_], axis=1)
    clusters = {
        number[c]: Cluster(number[c], _label(model.cluster_centers_[c]), int(sizes[c]),
                           model.cluster_centers_[c])
        for c in range(k)
    }  # fmt: skip
    for pattern, label, distance in zip(shaped, model.labels_, distances, strict=True):
        pattern.cluster = number[int(label)]
        pattern.distance = round(float(distance), 3)
        counts = clusters[pattern.cluster].classes
        counts[pattern.customer_class] = counts.get(pattern.customer_class, 0) + 1
    return [clusters[n] for n in sorted(clusters)]


def _wh(total: float, scaler: int) -> Decimal:
    return (Decimal(int(round(total))) * Decimal(10) ** scaler).normalize()


def analyse(meters, period: Period, k: int = K_DEFAULT) -> Analysis:
    """The shapes of `meters` (already scoped) over `period` and the period before it,
    clustered into `k` groups."""
    length = (period.last - period.first).days + 1
    before = Period(period.first - timedelta(days=length), period.first - timedelta(days=1))
    patterns: list[MeterPattern] = []
    chunk: list[Meter] = []

    def flush():
        classes = classes_of([m.pk for m in chunk])
        now, then = _energy(chunk, period, before)
        for meter in chunk:
            pattern = MeterPattern(meter, classes[meter.pk])
            if meter.pk in now:
                energy, days, scaler = now[meter.pk]
                pattern.shape = shape_of(energy, days)
                pattern.energy = _wh(energy.sum(), scaler)
            if meter.pk in then:
                energy, days, scaler = then[meter.pk]
                pattern.previous = shape_of(energy, days)
                pattern.previous_energy = _wh(energy.sum(), scaler)
            if pattern.shape is not None and pattern.previous is not None:
                pattern.change = round(moved_share(pattern.shape, pattern.previous), 3)
            patterns.append(pattern)
        chunk.clear()

    for meter in meters.iterator(chunk_size=CHUNK):
        chunk.append(meter)
        if len(chunk) >= CHUNK:
            flush()
    if chunk:
        flush()
    clusters = _cluster(patterns, k)
    by_class = defaultdict(list)
    for p in patterns:
        if p.shape is not None:
            by_class[p.customer_class].append(p.shape)
    classes = {name: np.mean(shapes, axis=0) for name, shapes in sorted(by_class.items())}
    return Analysis(period, k, patterns, clusters, classes)


# ------------------------------------------------------------------ output

SORTS = {"change": "most changed first", "serial": "meter", "cluster": "cluster"}
COLUMNS = [
    ("serial", "meter"), ("point", "service_point"), ("customer_class", "customer_class"),
    ("cluster", "cluster"), ("cluster_label", "cluster_shape"), ("distance", "distance"),
    ("energy", "energy_wh"), ("previous_energy", "previous_energy_wh"),
    ("change", "moved_share"), ("flags", "flags"),
    *[(f"h{s}", f"{'weekend' if s >= 24 else 'weekday'}_{s % 24:02d}") for s in range(SLOTS)],
]  # fmt: skip


def ordered(analysis: Analysis, sort: str) -> list[MeterPattern]:
    patterns = analysis.patterns
    if sort == "serial":
        return sorted(patterns, key=lambda p: p.meter.serial)
    if sort == "cluster":
        return sorted(patterns, key=lambda p: (p.cluster or 99, p.distance or 0, p.meter.serial))
    return sorted(patterns, key=lambda p: (p.change is None, -(p.change or 0), p.meter.serial))


def _figure(value: float) -> Decimal:
    return Decimal(f"{value:.3f}")


def row(pattern: MeterPattern, labels: dict[int, str]) -> dict:
    meter = pattern.meter
    out = {
        "serial": meter.serial, "point": meter.service_point.code,
        "customer_class": pattern.customer_class, "cluster": pattern.cluster,
        "cluster_label": labels.get(pattern.cluster, ""), "distance": pattern.distance,
        "energy": pattern.energy, "previous_energy": pattern.previous_energy,
        "change": pattern.change, "flags": "; ".join(pattern.flags),
    }  # fmt: skip
    for s in range(SLOTS):
        out[f"h{s}"] = None if pattern.shape is None else _figure(pattern.shape[s])
    return out


def rows(analysis: Analysis, sort: str = "change") -> Iterator[dict]:
    labels = {c.number: c.label for c in analysis.clusters}
    for pattern in ordered(analysis, sort):
        yield row(pattern, labels)


def shape_json(shape: np.ndarray) -> dict:
    return {
        "weekday": [str(_figure(v)) for v in shape[:24]],
        "weekend": [str(_figure(v)) for v in shape[24:]],
    }


def as_json(pattern: MeterPattern, labels: dict[int, str]) -> dict:
    def text(value):
        return None if value is None else str(value)

    return {
        "serial": pattern.meter.serial,
        "service_point": pattern.meter.service_point.code,
        "customer_class": pattern.customer_class,
        "cluster": pattern.cluster,
        "cluster_label": labels.get(pattern.cluster, ""),
        "distance": pattern.distance,
        "energy": text(pattern.energy),
        "previous_energy": text(pattern.previous_energy),
        "moved_share": pattern.change,
        "changed": pattern.changed,
        "flags": pattern.flags,
        "shape": None if pattern.shape is None else shape_json(pattern.shape),
    }


def summary_json(analysis: Analysis) -> dict:
    return {
        "first_day": analysis.period.first,
        "last_day": analysis.period.last,
        "k": analysis.k,
        "meters": len(analysis.patterns),
        "shaped": analysis.shaped,
        "changed": len(analysis.changed),
        "change_threshold": change_share(),
        "clusters": [
            {
                "number": c.number,
                "label": c.label,
                "meters": c.meters,
                "classes": c.classes,
                **shape_json(c.shape),
            }
            for c in analysis.clusters
        ],  # fmt: skip
        "classes": [
            {"customer_class": name, **shape_json(shape)}
            for name, shape in analysis.classes.items()
        ],
    }
