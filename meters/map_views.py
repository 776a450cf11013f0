"""The fleet map: a Leaflet page and its JSON data, clustered on the server.

`/map/data/?bbox=west,south,east,north&zoom=z&<list filters>` answers either the meters
themselves (when at most `POINT_LIMIT` lie in the box) or grid cells of about `CELL_PX`
screen pixels, each with its meter count per health class, aggregated in one SQL
`GROUP BY floor(lat / cell), floor(lon / cell)`. The browser therefore never holds more
than a few hundred cells or `POINT_LIMIT` points, whatever the size of the fleet.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.db.models import Count, F, FloatField, Max, Min, Q, Sum
from django.db.models.functions import Cast, Floor
from django.http import JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from accounts.mixins import ScopedViewMixin

from .choices import NodeKind
from .filters import Health, MeterFilter, filter_choices, health_expression
from .models import DataConcentrator, GridNode, Meter
from .panels import MAP_OVERLAY, render_panels
from .rollup_cache import aggregate_memory, cached_rollup

POINT_LIMIT = 1500  # meters sent one by one when no more than this lie in view
CELL_PX = 64  # cell edge in screen pixels at the requested zoom
MAX_COLUMNS, MAX_ROWS = 32, 24  # bounds the cells of one answer (a 2,560 px wide screen)
ASSET_ZOOM = 12  # concentrators, transformers, substations and lines appear from this zoom on
CLUSTER_BELOW_ZOOM = 13  # below this zoom meters are counted in cells even when few
ASSET_LIMIT = 1000
WORLD = (-180.0, -85.0, 180.0, 85.0)


def cell_degrees(zoom: int) -> float:
    """Cell edge in degrees of longitude: CELL_PX pixels of a 256-pixel Web Mercator tile."""
    return 360.0 / (256 * 2**zoom) * CELL_PX


def parse_bbox(text: str | None) -> tuple[float, float, float, float]:
    try:
        west, south, east, north = (float(v) for v in (text or "").split(","))
    except ValueError:
        return WORLD
    if not all(math.isfinite(v) for v in (west, south, east, north)):
        return WORLD
    west, east = max(west, -180.0), min(east, 180.0)
    south, north = max(south, -90.0), min(north, 90.0)
    if west >= east or south >= north:
        return WORLD
    return west, south, east, north


def parse_zoom(text: str | None) -> int:
    try:
        return min(max(int(text or 0), 0), 22)
    except ValueError:
        return 0


class MeterMapView(ScopedViewMixin, TemplateView):
    """Meters, concentrators and transformers on a map, coloured by health."""

    model = Meter
    template_name = "meters/map.html"

    def get_context_data(self, **kwargs):
        user = self.request.user
        filters = MeterFilter(user, self.request.GET)
        return {
            **super().get_context_data(**kwargs),
            "filter": filters,
            "node": filters.node,
            "tiles_url": settings.MAP_TILES_URL,
            "health": [(h, Health.LABELS[h]) for h in Health.ORDER],
            **filter_choices(user, filters.node),
            # other apps' figures per node (the energy balance's loss %), drawn by map.js
            "overlays": render_panels(MAP_OVERLAY, self.request, {}),
        }


class MapDataView(ScopedViewMixin, View):
    """`/map/data/`: clustered cells or single meters in a bounding box, as JSON."""

    model = Meter

    def get(self, request, *args, **kwargs):
        filters = MeterFilter(request.user, request.GET)
        meters = filters.queryset().filter(latitude__isnull=False, longitude__isnull=False)
        if request.GET.get("extent"):
            # The meters and the substations feeding them (drawn as the grid's topology).
            substations = GridNode.objects.restrict(request.user, "view").filter(
                kind=NodeKind.SUBSTATION, latitude__isnull=False, longitude__isnull=False
            )
            if filters.node is not None:
                substations = substations.filter(path__startswith=filters.node.path)
            boxes = [b for b in (_extent(meters), _extent(substations)) if b]
            if not boxes or not _extent(meters):
                return JsonResponse({"extent": _extent(meters)})
            union = [
                min(b[0] for b in boxes), min(b[1] for b in boxes),
                max(b[2] for b in boxes), max(b[3] for b in boxes),
            ]  # fmt: skip
            return JsonResponse({"extent": union})
        west, south, east, north = parse_bbox(request.GET.get("bbox"))
        zoom = parse_zoom(request.GET.get("zoom"))
        in_view = meters.filter(
            latitude__gte=south, latitude__lte=north, longitude__gte=west, longitude__lte=east
        )
        now = timezone.now()
        data = {"zoom": zoom, "bbox": [west, south, east, north], "filters": filters.cleaned}
        # Below CLUSTER_BELOW_ZOOM the answer is cells however few meters lie in view: no
        # point rows are read (at 100,000 meters, 1,501 rows with their health for nothing).
        points = []
        if zoom >= CLUSTER_BELOW_ZOOM:
            points = list(
                in_view.annotate(health=health_expression(now))
                .order_by()
                .values(
                    "pk", "serial", "latitude", "longitude", "status", "health",
                    "service_point__parent__latitude", "service_point__parent__longitude",
                )[: POINT_LIMIT + 1]
            )  # fmt: skip
        if zoom >= CLUSTER_BELOW_ZOOM and len(points) <= POINT_LIMIT:
            data.update(
                mode="points",
                total=len(points),
                points=[
                    {
                        "id": p["pk"],
                        "serial": p["serial"],
                        "lat": float(p["latitude"]),
                        "lon": float(p["longitude"]),
                        "status": p["status"],
                        "health": p["health"],
                        "transformer": _coordinates(
                            p["service_point__parent__latitude"],
                            p["service_point__parent__longitude"],
                        ),
                    }
                    for p in points
                ],
                cells=[],
            )
        else:
            # Never more than about MAX_COLUMNS x MAX_ROWS cells, whatever zoom is claimed.
            cell = max(cell_degrees(zoom), (east - west) / MAX_COLUMNS, (north - south) / MAX_ROWS)
            # Cached briefly per (scope, query): the answer carries its age (as_of).
            parts = ["map-cells", sorted(request.GET.lists()), (west, south, east, north), cell]
            cells, as_of = cached_rollup(request.user, parts, lambda: _cells(in_view, cell, now))
            data["as_of"] = as_of.isoformat()
            data.update(
                mode="cells",
                cell=cell,
                total=sum(c["n"] for c in cells),
                cells=cells,
                points=[],
            )
        data["detail_url"] = reverse("meters:meter-detail", args=["SERIAL"])
        data.update(_assets(request.user, filters, (west, south, east, north), zoom))
        return JsonResponse(data)


def _cells(meters, cell: float, now) -> list[dict]:
    # Float arithmetic (not numeric) for the cell keys: the cheap part of the aggregate.
    # Grouped by (cell, health) and pivoted here: the health CASE is evaluated once per meter
    # (a `Count(filter=Q(health=h))` per class repeated it in every FILTER clause).
    lat = Cast("latitude", FloatField())
    lon = Cast("longitude", FloatField())
    with aggregate_memory():
        rows = list(
            meters.annotate(
                health=health_expression(now),
                cy=Floor(lat / cell),
                cx=Floor(lon / cell),
            )
            .values("cy", "cx", "health")
            .annotate(n=Count("pk"), lat=Sum(lat), lon=Sum(lon))
            .order_by()
        )
    cells: dict[tuple, dict] = {}
    for row in rows:
        c = cells.get((row["cy"], row["cx"]))
        if c is None:
            c = cells[(row["cy"], row["cx"])] = {"n": 0, "lat": 0.0, "lon": 0.0, "counts": {}}
        c["n"] += row["n"]
        c["lat"] += row["lat"]
        c["lon"] += row["lon"]
        c["counts"][row["health"]] = row["n"]
    return [
        {
            "lat": round(c["lat"] / c["n"], 6),
            "lon": round(c["lon"] / c["n"], 6),
            "n": c["n"],
            "counts": {h: c["counts"][h] for h in Health.ORDER if c["counts"].get(h)},
        }
        for c in cells.values()
    ]


def _extent(meters) -> list[float] | None:
    box = meters.aggregate(
        south=Min("latitude"), north=Max("latitude"), west=Min("longitude"), east=Max("longitude")
    )
    if box["south"] is None:
        return None
    return [float(box[k]) for k in ("west", "south", "east", "north")]


def _assets(user, filters: MeterFilter, bbox, zoom: int) -> dict:
    """Concentrators and transformers in view (from ASSET_ZOOM on), under the node filter."""
    if zoom < ASSET_ZOOM:
        return {"concentrators": [], "transformers": [], "substations": []}
    west, south, east, north = bbox
    box = Q(
        latitude__gte=south,
        latitude__lte=north,
        longitude__gte=west,
        longitude__lte=east,
    )
    concentrators = DataConcentrator.objects.restrict(user, "view").filter(box)
    nodes = GridNode.objects.restrict(user, "view")
    transformers = nodes.filter(box, kind=NodeKind.TRANSFORMER)
    substations = nodes.filter(box, kind=NodeKind.SUBSTATION)
    if filters.node is not None:
        concentrators = concentrators.filter(grid_node__path__startswith=filters.node.path)
        transformers = transformers.filter(path__startswith=filters.node.path)
        substations = substations.filter(path__startswith=filters.node.path)
    return {
        "concentrators": [
            {
                "serial": c["serial"],
                "name": c["name"],
                "lat": float(c["lat"]),
                "lon": float(c["lon"]),
            }
            for c in concentrators.order_by()
            .annotate(lat=F("latitude"), lon=F("longitude"))
            .values("serial", "name", "lat", "lon")[:ASSET_LIMIT]
        ],
        "transformers": [
            {
                "id": t["pk"],
                "code": t["code"],
                "name": t["name"],
                "lat": float(t["latitude"]),
                "lon": float(t["longitude"]),
                # The feeder it hangs on and that feeder's substation: the line drawn to it.
                "feeder": t["parent__code"],
                "substation": _coordinates(
                    t["parent__parent__latitude"], t["parent__parent__longitude"]
                ),
            }
            for t in transformers.order_by().values(
                "pk",
                "code",
                "name",
                "latitude",
                "longitude",
                "parent__code",
                "parent__parent__latitude",
                "parent__parent__longitude",
            )[:ASSET_LIMIT]
        ],  # fmt: skip
        "substations": [
            {
                "code": n["code"],
                "name": n["name"],
                "lat": float(n["latitude"]),
                "lon": float(n["longitude"]),
            }
            for n in substations.order_by().values("code", "name", "latitude", "longitude")[
                :ASSET_LIMIT
            ]
        ],  # fmt: skip
    }


def _coordinates(lat, lon) -> list[float] | None:
    return None if lat is None or lon is None else [float(lat), float(lon)]
