"""Which meters a bulk command (or a schedule) is for: a set of meters, a grid subtree, a
customer group (the customers on one tariff code) or the meter list's filter result, always
within what the user may see.

Every door (the API, the meter list's "Switch supply", the schedule form) chooses through
:func:`choose`; an unknown meter, node or filter value is an error, never a silently wider or
narrower selection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import QuerySet
from django.http import QueryDict

from collection.commands.kinds import BadCommand
from meters.filters import FILTER_KEYS, MeterFilter
from meters.models import Customer, GridNode, Meter

MAX_LISTED = 10_000  # meters named one by one in one request


@dataclass
class Selection:
    """The chosen meters (a queryset in the user's view scope) and how they were chosen."""

    meters: QuerySet
    target: dict = field(default_factory=dict)

    def count(self) -> int:
        return self.meters.count()

    def preview(self) -> dict:
        """What the confirmation shows: how many, chosen how, whether it waits for approval,
        a few serials."""
        count = self.count()
        threshold = settings.AMI_COMMAND_APPROVAL_THRESHOLD
        return {
            "count": count,
            "label": self.target.get("label", ""),
            "needs_approval": count > threshold,
            "threshold": threshold,
            "sample": list(self.meters.order_by("serial").values_list("serial", flat=True)[:20]),
        }

    def for_request(self):
        """The meters as `actions.request_bulk` takes them."""
        return self.meters.select_related("organisation").order_by("pk")


def choose(user, *, meters=None, node=None, filters=None, tariff=None) -> Selection:
    """Exactly one of: `meters` (ids), `node` (a grid node id: its whole subtree), `tariff`
    (a customer group: the meters at the service points of the customers on this tariff
    code, as they are now), `filters` (the meter list's query parameters: q, node, model,
    protocol, status, read, health, link). BadCommand (field "meters", "node", "tariff" or
    "filter") when it does not fit."""
    ways = (("meters", meters), ("node", node), ("tariff", tariff), ("filter", filters))
    given = [name for name, v in ways if v]
    if len(given) != 1:
        raise BadCommand(
            "choose the meters one way: meters, node, tariff or filter", field="meters"
        )
    visible = Meter.objects.restrict(user, "view")
    if tariff:
        return _customer_group(user, visible, tariff)
    if meters:
        ids = _ids(meters)
        chosen = visible.filter(pk__in=ids)
        found = set(chosen.values_list("pk", flat=True))
        missing = sorted(set(ids) - found)
        if missing:
            shown = ", ".join(str(m) for m in missing[:10])
            raise BadCommand(f"no such meter: {shown}", field="meters")
        return Selection(chosen, {"by": "meters", "label": f"{len(ids)} chosen meters"})
    if node:
        try:
            node_id = int(node)
        except (TypeError, ValueError):
            raise BadCommand("a grid node is named by its id", field="node") from None
        found = GridNode.objects.restrict(user, "view").filter(pk=node_id).first()
        if found is None:
            raise BadCommand("no such grid node", field="node")
        chosen = visible.filter(service_point__path__startswith=found.path)
        label = f"{found.get_kind_display()} {found.code} and below"
        return Selection(chosen, {"by": "node", "node": found.pk, "label": label})
    if not isinstance(filters, dict):
        raise BadCommand("filter is an object of the meter list's parameters", field="filter")
    unknown = sorted(set(filters) - set(FILTER_KEYS))
    params = {k: str(v) for k, v in filters.items()}
    chosen = MeterFilter(user, params)
    if unknown or chosen.rejected:
        wrong = unknown + sorted(chosen.rejected)
        raise BadCommand(f"unknown filter values: {', '.join(wrong)}", field="filter")
    label = "meters where " + ", ".join(f"{k}={v}" for k, v in sorted(chosen.cleaned.items()))
    return Selection(
        chosen.queryset(), {"by": "filter", "filter": dict(chosen.cleaned), "label": label}
    )


def _customer_group(user, visible, tariff) -> Selection:
    code = str(tariff).strip()
    points = Customer.objects.restrict(user, "view").filter(tariff_code=code)
    if not code or not points.exists():
        raise BadCommand(f"no customer on tariff {code!r}", field="tariff")
    chosen = visible.filter(service_point__in=points.values("service_point"))
    label = f"customers on tariff {code}"
    return Selection(chosen, {"by": "tariff", "tariff": code, "label": label})


def from_meter_list(user, *, filters: str, all_filtered: bool, ids) -> Selection:
    """The meter list's bulk selection (its POST fields): the ticked meters, or every meter
    its filters (a query string) match. BadCommand as `choose`."""
    if not all_filtered:
        if not ids:
            raise BadCommand("select meters, or tick all meters that match", field="meters")
        return choose(user, meters=list(ids))
    params = QueryDict(filters or "")
    if any(params.get(k) for k in FILTER_KEYS):
        return choose(user, filters={k: params.get(k) for k in FILTER_KEYS if params.get(k)})
    return Selection(
        Meter.objects.restrict(user, "view"), {"by": "filter", "filter": {}, "label": "all meters"}
    )


def _ids(values) -> list[int]:
    if not isinstance(values, list | tuple) or len(values) > MAX_LISTED:
        raise BadCommand(f"meters is a list of at most {MAX_LISTED} ids", field="meters")
    try:
        if any(isinstance(v, bool) or not isinstance(v, int | str) for v in values):
            raise ValueError
        ids = sorted({int(v) for v in values})
    except (TypeError, ValueError):
        raise BadCommand("meters is a list of meter ids", field="meters") from None
    if any(i < 1 or i > 2**63 - 1 for i in ids):
        raise BadCommand("meters is a list of meter ids", field="meters")
    return ids
