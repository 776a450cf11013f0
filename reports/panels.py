"""The energy balance on the registry's grid tree and map (meters/panels.py slots
`grid-tree:overlay` and `map:overlay`): the loss % of every feeder and transformer in the
reader's scope over the last 7 local days, coloured by level, each linking to its balance
report (drill-down: feeder -> transformers -> meters).

The figures are `reports.balance.balances` (from the daily rollup, a few statements for all
nodes); the panel writes them as a JSON data block that static/js/grid.js and map.js draw.
"""

from __future__ import annotations

from decimal import Decimal
from functools import partial

from django.urls import reverse

from meters.panels import Panel

from . import balance
from .billing import Period

DAYS = 7
OK, WARN, BAD, UNKNOWN = "ok", "warn", "bad", "unknown"


def level(loss_percent: Decimal | None, alert: Decimal) -> str:
    """bad: at or above the alert level (AMI_LOSS_ALERT_PERCENT) or a check meter reading
    less than the meters below it (negative loss); warn: above half the alert level;
    unknown: no complete day."""
    if loss_percent is None:
        return UNKNOWN
    if loss_percent >= alert or loss_percent < 0:
        return BAD
    return WARN if loss_percent >= alert / 2 else OK


def node_losses(user, period: Period) -> list[dict]:
    """Per feeder and transformer in scope: code, kind, loss % (string or None), level,
    coordinates (None when unplaced) and the link to its balance report."""
    alert = balance.alert_percent()
    query = f"?from={period.first:%Y-%m-%d}&to={period.last:%Y-%m-%d}"
    out = []
    for result in balance.balances(user, balance.nodes_for(user), period):
        node, total = result.node, result.total
        percent = total.loss_percent if total is not None else None
        out.append({
            "id": node.pk, "code": node.code, "name": node.name, "kind": node.kind,
            "loss_percent": None if percent is None else str(percent.quantize(Decimal("0.1"))),
            "level": level(percent, alert),
            "lat": None if node.latitude is None else float(node.latitude),
            "lng": None if node.longitude is None else float(node.longitude),
            "url": reverse("reports:balance-node", args=[node.pk]) + query,
        })  # fmt: skip
    return out


def _context(request, page_context, *, names: bool = True) -> dict | None:
    if not request.user.has_perm("meters.view_gridnode"):
        return None
    period = Period.last_days(DAYS)
    losses = node_losses(request.user, period)
    if not names:  # the tree has its own labels (and a large one draws only its roots)
        losses = [{k: v for k, v in n.items() if k not in ("code", "name")} for n in losses]
    return {
        "losses": losses,
        "loss_period": period,
        "loss_alert": balance.alert_percent(),
        "loss_warn": balance.alert_percent() / 2,
        "balance_url": reverse("reports:balance")
        + f"?from={period.first:%Y-%m-%d}&to={period.last:%Y-%m-%d}",
    }


grid_losses = Panel("reports/_grid_losses.html", partial(_context, names=False))
map_losses = Panel("reports/_map_losses.html", _context)
