"""The demo's energy balance has real figures: the simulated fleet is read through the job
path (profiles over DLMS on loopback, both profile styles), and a transformer's balance per
interval equals what the simulator's value model says its check meter and its meters took.

NS1F2T1 (meters 90000007-09; 90000008 has the cumulative profile) has check meter 90000052
(cumulative too), which adds 3 % load loss, 10 Wh no-load per interval and an unmetered
evening load: every complete interval loses energy, and the hints see a load-dependent loss
that technical losses do not explain.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from collection.simulators import model
from meters.models import GridNode, Meter
from meters.store.days import local_zone
from reports import balance
from reports.billing import Period
from tests.meters.test_demo_live import live_demo, read  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow


def _net(serial: str, k: int) -> int:
    return model.interval_value(serial, 1, k) - model.interval_value(serial, 2, k)


def test_a_demo_transformer_balances_as_the_simulator_computes(live_demo):  # noqa: F811
    for i, meter in enumerate(live_demo.fleet.meters, start=1):  # as the Procfile's simulator
        if i % 4 == 0:
            meter.profile_style = "cumulative"
    node = GridNode.objects.get(code="NS1F2T1")
    check = Meter.objects.get(check_node=node)
    below = list(Meter.objects.filter(service_point__parent=node).order_by("serial"))
    assert check.serial == "90000052" and [m.serial for m in below] == [
        "90000007", "90000008", "90000009"
    ]  # fmt: skip
    read([check, *below], ["profile"])
    admin = live_demo.demo.users["admin"]
    today = live_demo.clock().astimezone(local_zone()).date()
    period = Period(today - timedelta(days=1), today)
    buckets = [b for b in balance.interval_buckets(admin, node, period, [check]) if b.complete]
    assert len(buckets) >= 90  # a day of intervals, less the first of a cumulative profile
    for bucket in buckets:
        k = round((bucket.start - model.EPOCH).total_seconds() / model.INTERVAL_S) - 1
        assert bucket.input == Decimal(_net(check.serial, k))
        assert bucket.delivered == Decimal(sum(_net(m.serial, k) for m in below))
        assert bucket.loss > 0
    hints = balance.hints(buckets, None)
    assert any("suspect non-technical" in h for h in hints), hints
