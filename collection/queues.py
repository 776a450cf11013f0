"""Which Celery queue a read batch goes to: one `collect` queue, or one per region and/or protocol.

`AMI_COLLECT_ROUTE_BY` (setting or environment) says how:

* empty (the default): every read batch on `collect`, as before;
* `region`: `collect.<region code>`; the region is the grid node of kind *region* above the
  meter's service point;
* `protocol`: `collect.<protocol>` (the meter's endpoint protocol: dlms, modbus, ...);
* `region,protocol`: `collect.<region code>.<protocol>`.

Names are lower case; characters other than letters, digits, `-` and `_` become `-`. A meter
the rule cannot place (no service point, none of its ancestors a region, no endpoint) goes to
`collect`, the catch-all queue every deployment keeps a worker on. A run's meters are split
by queue before they are cut into batches (`collection.scheduling.line_batches`), so a batch
never mixes queues; a shared line's meters share a region and a protocol, so a line is never
split. Workers take their queues with `-Q` (`AMI_WORKER_QUEUES` in the Procfile); `manage.py
collect_queues` lists the queues the fleet needs now (docs/operations.md, "Worker queues").
"""

from __future__ import annotations

import os
import re

from django.conf import settings

from meters.choices import NodeKind
from meters.models import GridNode, Meter

CATCH_ALL = "collect"
KEYS = ("region", "protocol")
_UNSAFE = re.compile(r"[^a-z0-9_-]+")


def route_by() -> tuple[str, ...]:
    """The keys of the rule, in name order; () for the single `collect` queue."""
    value = getattr(settings, "AMI_COLLECT_ROUTE_BY", None)
    if value is None:
        value = os.environ.get("AMI_COLLECT_ROUTE_BY", "")
    keys = {k.strip().lower() for k in value.split(",") if k.strip()}
    unknown = keys - set(KEYS)
    if unknown:
        raise ValueError(
            f"AMI_COLLECT_ROUTE_BY: unknown key(s) {', '.join(sorted(unknown))}; "
            "use region, protocol or region,protocol"
        )
    return tuple(k for k in KEYS if k in keys)


def queue_name(*parts: str) -> str:
    return ".".join([CATCH_ALL, *(_UNSAFE.sub("-", p.lower()).strip("-") or "-" for p in parts)])


def queues_of(meter_ids: list[int]) -> dict[int, str]:
    """The queue of each meter (two queries at most, whatever the number of meters)."""
    keys = route_by()
    if not keys:
        return dict.fromkeys(meter_ids, CATCH_ALL)
    rows = Meter.objects.filter(pk__in=list(meter_ids)).values_list(
        "pk", "service_point__path", "endpoint__protocol"
    )
    ancestors = {
        pk: [int(part) for part in (path or "").strip("/").split("/") if part]
        for pk, path, _protocol in rows
    }
    regions = {}
    if "region" in keys:
        wanted = {node for nodes in ancestors.values() for node in nodes}
        regions = dict(
            GridNode.objects.filter(pk__in=wanted, kind=NodeKind.REGION).values_list("pk", "code")
        )
    out = {}
    for pk, _path, protocol in rows:
        parts = []
        if "region" in keys:
            region = next((regions[n] for n in ancestors[pk] if n in regions), None)
            parts.append(region)
        if "protocol" in keys:
            parts.append(protocol)
        out[pk] = CATCH_ALL if None in parts or "" in parts else queue_name(*parts)
    for pk in meter_ids:
        out.setdefault(pk, CATCH_ALL)
    return out


def split(meter_ids: list[int]) -> dict[str, list[int]]:
    """Meter ids per queue, each list in the order given."""
    queue = queues_of(meter_ids)
    out: dict[str, list[int]] = {}
    for pk in meter_ids:
        out.setdefault(queue[pk], []).append(pk)
    return out


def fleet_queues() -> list[str]:
    """Every read queue the rule can name now (each region with each protocol in use),
    `collect` included: what workers should take between them."""
    keys = route_by()
    if not keys:
        return [CATCH_ALL]
    regions: list = [None]
    protocols: list = [None]
    if "region" in keys:
        regions = list(GridNode.objects.filter(kind=NodeKind.REGION).values_list("code", flat=True))
    if "protocol" in keys:
        protocols = list(
            Meter.objects.exclude(endpoint__protocol=None)
            .values_list("endpoint__protocol", flat=True)
            .distinct()
            .order_by()
        )
    names = {
        queue_name(*[p for p in (region, protocol) if p is not None])
        for region in regions
        for protocol in protocols
    }
    return sorted(names | {CATCH_ALL})
