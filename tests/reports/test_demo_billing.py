"""The demo's last month of billing determinants are real bills (portal/demo.py's history).

Every meter of the demo fleet has its registers read at last month's bounds, as the
simulators' registers were then, so its consumption is end read - start read and, for a
meter with a load profile, equals the profile's sum; only the communication-lost meter (its
simulator never answers) is held back, for a real reason: its history stops on day
`SILENT_DAY` of last month (no end read, a third of the intervals missing).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from collection.simulators import model as sim
from meters.demo import load_demo
from meters.models import Meter
from meters.obis import dotted
from meters.obis import parse as parse_obis
from meters.store.days import day_bounds, local_zone
from portal import demo as portal_demo
from portal.customers import month_start
from reports import billing

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_last_months_billing_of_the_demo_fleet_holds_back_only_the_silent_meter():
    demo = load_demo()
    today = timezone.localdate()
    start = day_bounds(month_start(today, 1), local_zone())[0]
    end = day_bounds(month_start(today), local_zone())[0]
    period = billing.Period.parse(None, None, None)  # what the page shows first
    assert (period.start, period.end) == (start, end)
    results = list(billing.determinants(billing.meters_for(demo.users["admin"]), period))
    assert len(results) == Meter.objects.count() > 70
    [silent] = portal_demo.SILENT
    held = [r for r in results if r.held]
    assert [r.meter.serial for r in held] == [silent]
    lost = held[0]
    assert lost.missing_share > billing.max_estimated_share()
    energy = {row["obis"]: row for row in lost.rows}["1-0:1.8.0*255"]
    assert energy["source"] == billing.INTERVAL_SUM and "end read missing" in energy["flags"]
    profiled = 0
    for result in results:
        if result.held:
            continue
        serial = result.meter.serial
        assert result.flags == [] and (result.missing_share or 0) == 0, (serial, result.flags)
        rows = {row["obis"]: row for row in result.rows}
        for obis, row in rows.items():
            assert row["end_value"] is not None, (serial, obis, row["flags"])
            if parse_obis(obis).d == billing.DEMAND_D:
                watts, at = sim.max_demand(serial, end - timedelta(minutes=1))
                assert (row["end_value"], row["demand_at"]) == (Decimal(watts), at)
                continue
            assert row["source"] == "registers", (serial, obis, row["flags"])
            code = dotted(obis)  # the simulator's "1.0.1.8.0.255"
            expected = sim.register_value(serial, code, end) - sim.register_value(
                serial, code, start
            )
            assert row["consumption"] == expected, (serial, obis)
            if row["profile_sum"] is not None:  # a profile of the same quantity
                assert row["difference"] == 0, (serial, obis)
                profiled += 1
    assert profiled > 4 * 60  # import, export, both reactive of every simulated meter
    # The page as an operator opens it; its CSV export is held back, naming the silent meter.
    client = Client()
    client.force_login(demo.users["north-operator"])  # the silent meter is North's
    page = client.get("/reports/billing/")
    assert page.status_code == 200
    refused = client.get("/reports/billing/?format=csv")
    assert refused.status_code == 409
    assert f"1 meter above the estimated/missing threshold: {silent}" in refused.content.decode()
