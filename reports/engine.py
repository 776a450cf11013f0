"""The report engine: the built-in reports as definable sources, and running a definition.

A *source* (`SOURCES`) is one of the built-in reports (billing determinants, energy balance,
load, tamper, patterns, collection, the data query, vending) seen as a table: which filters
it honours (grid subtree, meter model, customer class), its groupings (each with its columns
and an optional graph) and a builder of row dicts; the data query also reads the
definition's quantities (OBIS codes) and takes its resolution as its grouping. A
`ReportDefinition` names a source and its settings; every save is a `ReportVersion` whose
`snapshot` (`snapshot()`) is what a run reads, so a run is reproducible from the version it
records.

Scope: a definition belongs to an organisation and a run sees what its user sees *inside that
organisation's subtree* (`within()`): the same definition run by staff of a parent office
gives the organisation's figures, never more, and a scheduled run mailed to the
organisation's staff holds nothing they could not open themselves.

Periods are relative (`PeriodKind`: last month, the last 7 days, ...) and resolved on the day
of the run in the utility's time zone, or fixed days. Rows are generators end to end: only
the first `CHART_ROWS` rows are kept for the graph, so a large run keeps a flat memory
(`building.build_run` writes it through `exporters.table*`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import chain, islice

from accounts.scoping import scope_paths
from meters.models import GridNode, Meter, MeterModel
from meters.store import query
from meters.store.days import local_zone

from . import balance, billing, charts, collection, load, patterns, tamper, vending
from .models import PeriodKind

CHART_ROWS = 60
QUERY_MAX_DAYS = 366  # a definition's data query; the page itself goes further
FILTERS = ("node", "meter_model", "customer_class")
FILTER_LABELS = {
    "node": "grid node",
    "meter_model": "meter model",
    "customer_class": "customer class",
}


# ------------------------------------------------------------------ scope


def within(user, organisation):
    """`user` narrowed to `organisation`'s subtree: the principal every run reads with.

    The user's own scope (organisation and grants) intersected with the organisation's
    subtree, for reading only; the model permissions stay the user's. The copy carries the
    narrowed paths where `accounts.scoping.scope_paths` looks for them first.
    """
    paths = scope_paths(user, "view")
    org_path = organisation.path
    if paths is None or any(org_path.startswith(p) for p in paths):
        inside = [org_path]
    else:
        inside = [p for p in paths if p.startswith(org_path)]
    principal = copy.copy(user)
    principal.has_perm = user.has_perm  # a superuser keeps every permission ...
    principal.is_superuser = False  # ... but not the whole world
    principal._ami_scope_paths = {"view": inside, "write": []}
    return principal


# ------------------------------------------------------------------ sources


@dataclass(frozen=True)
class Chart:
    """A graph over the first rows: x labels from `label`, a line per (key, name) in `values`."""

    label: str | Callable[[dict], str]
    values: tuple[tuple[str, str], ...]
    unit: str


@dataclass(frozen=True)
class Grouping:
    label: str
    columns: tuple[tuple[str, str], ...]
    chart: Chart | None = None


@dataclass(frozen=True)
class Spec:
    """A version's settings resolved for one run."""

    source: Source
    grouping_key: str
    period: billing.Period
    node: GridNode | None = None
    meter_model: MeterModel | None = None
    customer_class: str = ""
    columns: tuple[str, ...] = ()
    graph: bool = True
    quantities: tuple[str, ...] = ()

    @property
    def grouping(self) -> Grouping:
        return self.source.groupings[self.grouping_key]


@dataclass(frozen=True)
class Source:
    key: str
    title: str
    permission: str  # the model permission the figures need, e.g. "meters.view_meter"
    groupings: dict[str, Grouping]
    build: Callable[[object, Spec], Iterable[dict]]
    filters: tuple[str, ...] = ()
    max_days: int | None = None
    description: str = ""
    quantities: bool = False  # whether it reads the definition's quantities (the data query)

    @property
    def default_grouping(self) -> str:
        return next(iter(self.groupings))


def _meters(principal, spec: Spec, base=None):
    """The principal's meters narrowed by the spec's filters (grid subtree, model, class)."""
    meters = Meter.objects.restrict(principal, "view") if base is None else base
    if spec.node is not None:
        meters = meters.filter(service_point__path__startswith=spec.node.path)
    if spec.meter_model is not None:
        meters = meters.filter(meter_model=spec.meter_model)
    if spec.customer_class:
        supplying = Meter.objects.filter(
            service_point__customers__tariff_code=spec.customer_class
        ).values("pk")
        meters = meters.filter(pk__in=supplying)
    return meters


def _billing(principal, spec: Spec) -> Iterator[dict]:
    meters = _meters(principal, spec, billing.meters_for(principal))
    results = billing.determinants(meters, spec.period)
    if spec.grouping_key == "register":
        for result in results:
            yield from result.rows
        return
    for result in results:
        meter = result.meter
        yield {
            "serial": meter.serial,
            "point": meter.service_point.code if meter.service_point_id else "",
            "model": meter.meter_model.name,
            "registers": len(result.rows),
            "estimated_share": result.estimated_share,
            "missing_share": result.missing_share,
            "held": result.held,
            "flags": "; ".join(result.flags),
        }


def _tamper(principal, spec: Spec) -> Iterator[dict]:
    meters = _meters(principal, spec, tamper.meters_for(principal))
    return tamper.rows(tamper.findings(principal, spec.period, meters))


def _patterns(principal, spec: Spec) -> Iterator[dict]:
    meters = _meters(principal, spec, patterns.customer_meters(principal))
    return patterns.rows(patterns.analyse(meters, spec.period), sort=spec.grouping_key)


def _balance(principal, spec: Spec) -> Iterator[dict]:
    kind = None if spec.grouping_key == "node" else spec.grouping_key
    nodes = balance.nodes_for(principal, kind=kind, within=spec.node)
    return balance.list_rows(balance.balances(principal, nodes, spec.period))


def _load(principal, spec: Spec) -> Iterator[dict]:
    load.check_period(spec.period)
    if spec.grouping_key == "class":
        profiles = load.class_loads(principal, spec.period)
    else:
        nodes = load.nodes_for(principal)
        if spec.node is not None:
            nodes = nodes.filter(path__startswith=spec.node.path)
        profiles = (load.node_load(principal, node, spec.period) for node in nodes)
    return (load.summary(p) for p in profiles)


def _collection(principal, spec: Spec) -> list[dict]:
    today = datetime.now(local_zone()).date()
    days = max(1, (today - spec.period.first).days)
    rows = collection.collection_success(principal, group=spec.grouping_key, days=days)
    return [r for r in rows if spec.period.first <= r["day"] <= spec.period.last]


def _vending(principal, spec: Spec) -> list[dict]:
    period = vending.Period(spec.period.first, spec.period.last)
    _title, _columns, rows = vending.build(
        spec.grouping_key, vending.sources_for(principal), period
    )
    return rows


def _query(principal, spec: Spec) -> Iterator[dict]:
    """The data query: the definition's quantities of its meters over the period, at the
    grouping's resolution (meters/store/query.py, as the query page and its exports)."""
    meters = query.select_meters(_meters(principal, spec))
    data = query.DataQuery(
        meters, list(spec.quantities), spec.period.start, spec.period.end, spec.grouping_key
    )
    for row in data.rows():
        yield {"serial": row.serial, "obis": row.obis, "name": row.name, "time": row.ts,
               "value": row.value, "unit": row.unit, "quality": row.quality,
               "count": row.count}  # fmt: skip


def _query_label(row: dict) -> str:
    return f"{row['serial']} {row['time'].astimezone(local_zone()):%d %b %H:%M}"


def _serial(row: dict) -> str:
    return str(row.get("serial") or row.get("code") or row.get("key") or "")


_BILLING_METER = (
    ("serial", "meter"), ("point", "service_point"), ("model", "meter_model"),
    ("registers", "registers"), ("estimated_share", "estimated_share"),
    ("missing_share", "missing_share"), ("held", "held"), ("flags", "flags"),
)  # fmt: skip
# The data query's columns: the headings of its exports (exporters/rows.py COLUMNS).
_QUERY_COLUMNS = (("serial", "meter"), ("obis", "obis"), ("name", "quantity"), ("time", "time"),
                  ("value", "value"), ("unit", "unit"), ("quality", "quality"),
                  ("count", "count"))  # fmt: skip
_QUERY_RESOLUTIONS = {query.DAY: "daily values", query.HOUR: "hourly values",
                      query.RAW: "raw intervals and reads", query.MONTH: "monthly values",
                      query.AUTO: "resolution chosen by the period's length"}  # fmt: skip
_COLLECTION_GROUPS = {"job": "per read job", "feeder": "per feeder",
                      "transformer": "per transformer", "model": "per meter model"}  # fmt: skip

SOURCES: dict[str, Source] = {
    source.key: source
    for source in (
        Source(
            "billing", "Billing determinants", "meters.view_meter",
            {
                "register": Grouping("a row per register", tuple(billing.COLUMNS),
                                     Chart(_serial, (("consumption", "consumption"),), "")),
                "meter": Grouping("a row per meter (quality summary)", _BILLING_METER,
                                  Chart(_serial, (("estimated_share", "estimated share"),
                                                  ("missing_share", "missing share")), "")),
            },
            _billing, filters=FILTERS,
            description="register reads at the period's bounds, consumption, quality",
        ),
        Source(
            "balance", "Energy balance and line loss", "meters.view_gridnode",
            {
                "node": Grouping("feeders and transformers", tuple(balance.LIST_COLUMNS),
                                 Chart(_serial, (("input", "input"), ("delivered", "delivered"),
                                                 ("loss", "loss")), "Wh")),
                "feeder": Grouping("feeders", tuple(balance.LIST_COLUMNS),
                                   Chart(_serial, (("loss_percent", "loss"),), "%")),
                "transformer": Grouping("transformers", tuple(balance.LIST_COLUMNS),
                                        Chart(_serial, (("loss_percent", "loss"),), "%")),
            },
            _balance, filters=("node",),
            description="check meters vs the meters below them, loss per node",
        ),
        Source(
            "load", "Load analysis", "meters.view_gridnode",
            {
                "node": Grouping("feeders and transformers", tuple(load.COLUMNS),
                                 Chart(_serial, (("peak_kw", "peak"), ("average_kw", "average")),
                                       "kW")),
                "class": Grouping("customer classes", tuple(load.COLUMNS),
                                  Chart(_serial, (("peak_kw", "peak"),), "kW")),
            },
            _load, filters=("node",), max_days=balance.MAX_INTERVAL_DAYS,
            description="peak and its time, load factor, overload hours",
        ),
        Source(
            "tamper", "Tamper and communication", "meters.view_meter",
            {"meter": Grouping("meters, most suspicious first", tuple(tamper.COLUMNS),
                               Chart(_serial, (("score", "score"),), ""))},
            _tamper, filters=FILTERS,
            description="tamper events, consumption drops, reverse energy, unreachable meters",
        ),
        Source(
            "patterns", "Customer patterns", "meters.view_meter",
            {key: Grouping(label, tuple(patterns.COLUMNS),
                           Chart(_serial, (("change", "moved share"),), ""))
             for key, label in patterns.SORTS.items()},
            _patterns, filters=FILTERS, max_days=366,
            description="daily and weekly load shapes, clusters, changes vs the period before",
        ),
        Source(
            "collection", "Collection success", "collection.view_jobrun",
            {key: Grouping(label, tuple(collection.columns(key)),
                           Chart(lambda r: f"{r['day']:%d %b} {r['group']}",
                                 (("rate", "success"),), "%"))
             for key, label in _COLLECTION_GROUPS.items()},
            _collection, max_days=366, description="reads scheduled and read, per day",
        ),
        Source(
            "query", "Data query", "reports.view_exportjob",
            {key: Grouping(label, _QUERY_COLUMNS,
                           Chart(_query_label, (("value", "value"),), ""))
             for key, label in _QUERY_RESOLUTIONS.items()},
            _query, filters=FILTERS, max_days=QUERY_MAX_DAYS, quantities=True,
            description="chosen quantities (OBIS codes) of the meters, per interval, hour, "
                        "day or month",
        ),
        Source(
            "vending", "Vending", "vending.view_sale",
            {slug: Grouping(title, tuple(columns)) for slug, (title, columns, _f)
             in vending.TABLES.items()},
            _vending, description="sales, cash, debt and tax per period",
        ),
    )
}  # fmt: skip


def source_choices(user=None) -> list[tuple[str, str]]:
    """(key, title) of the sources `user` may run (every one without a user)."""
    return [
        (s.key, s.title) for s in SOURCES.values() if user is None or user.has_perm(s.permission)
    ]


# ------------------------------------------------------------------ periods


def resolve_period(kind: str, first: date | None, last: date | None, today: date | None = None):
    """The local days a period kind means on `today` (the utility's today by default)."""
    today = today or datetime.now(local_zone()).date()
    if kind == PeriodKind.FIXED:
        if first is None or last is None:
            raise ValueError("a fixed period needs its first and last day")
        return billing.Period.days(first, last)
    if kind == PeriodKind.LAST_MONTH:
        return billing.Period.month(f"{today.replace(day=1) - timedelta(days=1):%Y-%m}")
    if kind == PeriodKind.THIS_MONTH:
        return billing.Period.days(today.replace(day=1), today)
    days = {PeriodKind.YESTERDAY: 1, PeriodKind.LAST_7_DAYS: 7, PeriodKind.LAST_30_DAYS: 30}
    if kind not in days:
        raise ValueError(f"unknown period {kind!r}")
    return billing.Period.days(today - timedelta(days=days[kind]), today - timedelta(days=1))


# ------------------------------------------------------------------ checking settings


def problems(fields: dict) -> dict[str, str]:
    """What is wrong with a definition's settings, by field (empty: nothing).

    `fields`: source, grouping, columns, period, period_from, period_to, node, meter_model,
    customer_class (objects or None), as the form, the serializer and the model hold them.
    """
    errors: dict[str, str] = {}
    source = SOURCES.get(fields.get("source") or "")
    if source is None:
        return {"source": f"Unknown report {fields.get('source')!r}; one of {', '.join(SOURCES)}."}
    for name in FILTERS:
        if fields.get(name) and name not in source.filters:
            errors[name] = f"{source.title} cannot be filtered by {FILTER_LABELS[name]}."
    quantities = fields.get("quantities") or []
    if not source.quantities and quantities:
        errors["quantities"] = f"{source.title} takes no quantities."
    elif source.quantities:
        if not isinstance(quantities, list) or not all(isinstance(q, str) for q in quantities):
            errors["quantities"] = "A list of OBIS codes."
        elif not quantities:
            errors["quantities"] = "Name at least one quantity (an OBIS code, e.g. 1-0:1.8.0)."
        elif bad := [q for q in quantities if not query.parse_channels([q])]:
            errors["quantities"] = f"Not OBIS codes: {', '.join(bad)}."
    grouping = fields.get("grouping") or source.default_grouping
    if grouping not in source.groupings:
        errors["grouping"] = f"{source.title} is grouped by one of: {', '.join(source.groupings)}."
    else:
        known = {key for key, _h in source.groupings[grouping].columns}
        columns = fields.get("columns") or []
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            errors["columns"] = "A list of column names."
        elif unknown := [c for c in columns if c not in known]:
            errors["columns"] = f"Unknown columns: {', '.join(unknown)}."
    try:
        period = resolve_period(fields.get("period") or "", fields.get("period_from"),
                                fields.get("period_to"))  # fmt: skip
    except ValueError as exc:
        errors["period"] = f"{exc}."
    else:
        if source.max_days and (period.last - period.first).days >= source.max_days:
            errors["period"] = f"{source.title} covers at most {source.max_days} days."
    return errors


# ------------------------------------------------------------------ versions and runs


def snapshot(definition) -> dict:
    """The definition's settings as a version keeps them (ids with their names)."""
    node, model = definition.node, definition.meter_model
    return {
        "name": definition.name,
        "description": definition.description,
        "source": definition.source,
        "node": node.pk if node else None,
        "node_code": node.code if node else "",
        "meter_model": model.pk if model else None,
        "meter_model_name": model.name if model else "",
        "customer_class": definition.customer_class,
        "grouping": definition.grouping or SOURCES[definition.source].default_grouping,
        "columns": list(definition.columns or []),
        "quantities": list(definition.quantities or []),
        "period": definition.period,
        "period_from": definition.period_from.isoformat() if definition.period_from else None,
        "period_to": definition.period_to.isoformat() if definition.period_to else None,
        "graph": definition.graph,
    }


def spec_of(principal, settings: dict, today: date | None = None) -> Spec:
    """A version's settings for a run by `principal`: ValueError with a clear message when
    the report, a filter's node or model is gone or out of scope (a filter never widens)."""
    source = SOURCES.get(settings["source"])
    if source is None:
        raise ValueError(f"the report {settings['source']!r} no longer exists")
    if not principal.has_perm(source.permission):
        raise ValueError(f"you may not see the figures of {source.title}")
    node = model = None
    if settings.get("node"):
        node = GridNode.objects.restrict(principal, "view").filter(pk=settings["node"]).first()
        if node is None:
            raise ValueError(f"the grid node {settings.get('node_code')} is not in scope any more")
    if settings.get("meter_model"):
        model = MeterModel.objects.restrict(principal, "view").filter(pk=settings["meter_model"])
        model = model.first()
        if model is None:
            raise ValueError(f"the meter model {settings.get('meter_model_name')} is gone")
    first, last = settings.get("period_from"), settings.get("period_to")
    period = resolve_period(
        settings["period"],
        date.fromisoformat(first) if first else None,
        date.fromisoformat(last) if last else None,
        today,
    )
    grouping = settings.get("grouping") or source.default_grouping
    if grouping not in source.groupings:
        raise ValueError(f"{source.title} has no grouping {grouping!r} any more")
    return Spec(
        source, grouping, period, node, model, settings.get("customer_class", ""),
        tuple(settings.get("columns") or ()), settings.get("graph", True),
        tuple(query.parse_channels(settings.get("quantities") or ())),
    )  # fmt: skip


@dataclass
class Table:
    """A run's output: columns, rows (a generator), and the graph of the first rows."""

    title: str
    note: str
    columns: list[tuple[str, str]]
    rows: Iterator[dict]
    chart: tuple | None = None  # (series, labels, unit) as exporters.table_pdf takes it
    head: list[dict] = field(default_factory=list)


def table(principal, spec: Spec, title: str) -> Table:
    """Build the run's table: rows stream; the first CHART_ROWS feed the graph."""
    grouping = spec.grouping
    columns = [(k, h) for k, h in grouping.columns if not spec.columns or k in spec.columns]
    rows = iter(spec.source.build(principal, spec))
    head = list(islice(rows, CHART_ROWS))
    chart = None
    if spec.graph and grouping.chart is not None:
        spec_chart = grouping.chart
        label = spec_chart.label
        labels = [label(r) if callable(label) else str(r[label]) for r in head]
        series = [
            charts.Series(name, f"series-{'abc'[i % 3]}", [r.get(key) for r in head])
            for i, (key, name) in enumerate(spec_chart.values)
        ]
        chart = (series, labels, spec_chart.unit)
    note = f"{spec.source.title}, {grouping.label}, {spec.period.first} to {spec.period.last}"
    filters = [
        f"grid node {spec.node.code}" if spec.node else "",
        f"meter model {spec.meter_model.name}" if spec.meter_model else "",
        f"customer class {spec.customer_class}" if spec.customer_class else "",
        f"quantities {', '.join(spec.quantities)}" if spec.quantities else "",
    ]
    if any(filters):
        note += "; " + ", ".join(f for f in filters if f)
    return Table(title, note, columns, chain(head, rows), chart, head)
