"""Similar homes precomputed per grid area, customer class and period (portal.similar): the
same class in the same area only, read (never computed) by the usage page, with its "as of";
recomputed days replace the old ones (late reads), a killed run is redone by the next."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from meters.choices import NodeKind
from meters.models import Customer, GridNode, Meter
from meters.store import DailyEnergy
from portal import similar, tasks, usage
from portal.models import SimilarHomes
from tests.meters.test_pages import client_for
from tests.portal.data import store_days

pytestmark = pytest.mark.django_db


@pytest.fixture
def homes(world):
    """Two R1 homes under feeder A (7 and 9 kWh a day, +37 Wh a day back), an R1 home in
    the other organisation's area and a C9 home under feeder A, both far heavier."""
    mine, neighbour = world.grid_a.customers[:2]
    point = GridNode.objects.create(
        kind=NodeKind.SERVICE_POINT, code="NA-SP9", name="SP 9",
        parent=world.grid_a.transformer, organisation=world.org_a,
    )  # fmt: skip
    heavy = Meter.objects.create(serial="NA000009", meter_model=world.meter_model,
                                 service_point=point, organisation=world.org_a)  # fmt: skip
    other_class = Customer.objects.create(account_number="NA-ACC-9", name="C9", service_point=point)
    for customer, code in ((mine, "R1"), (neighbour, "R1"), (world.grid_b.customers[0], "R1"),
                           (other_class, "C9")):  # fmt: skip
        customer.tariff_code = code
        customer.save()
    a = store_days(world.grid_a.meters[0], days=400, wh=7_000)
    b = store_days(world.grid_a.meters[1], days=400, wh=9_000)
    store_days(heavy, days=400, wh=500_000)  # another class, same area
    store_days(world.grid_b.meters[0], days=400, wh=900_000)  # same class, another area
    return mine, a, b


def expected(a: dict, b: dict, win) -> Decimal:
    days = [d for d in a if win.first <= d <= win.last]
    return sum((Decimal(a[d] + b[d]) / 2000 for d in days), Decimal(0))


def test_each_period_is_the_average_home_of_the_class_in_the_area(world, homes):
    mine, a, b = homes
    assert similar.compute() > 0
    today = timezone.localdate()
    for kind in usage.KINDS:
        for anchor in (today, today - timedelta(days=200)):
            win = usage.window(kind, anchor)
            found = usage.similar_homes(mine, win)
            assert found is not None and found.homes == 2, (kind, anchor)
            assert found.kwh == expected(a, b, win), (kind, anchor)
    # the other area has its own figure, of its one home
    south = usage.similar_homes(world.grid_b.customers[0], usage.window("month", today))
    assert south.homes == 1 and south.kwh >= 900
    # one row per area, class and period, whatever the number of runs
    before = SimilarHomes.objects.count()
    similar.compute()
    assert SimilarHomes.objects.count() == before


def test_the_page_only_reads_the_figure_and_says_as_of_when(world, homes):
    mine, a, b = homes
    client = client_for(world.customer)
    html = client.get("/portal/usage/").content.decode()
    assert "not enough data" in html and not SimilarHomes.objects.exists()  # never computed
    similar.compute()
    win = usage.window("month", timezone.localdate())
    with CaptureQueriesContext(connection) as queries:
        usage.similar_homes(mine, win)
    assert not any("dailyenergy" in q["sql"] for q in queries.captured_queries)
    html = client.get("/portal/usage/").content.decode()
    row = SimilarHomes.objects.get(area=world.grid_a.feeder, tariff_code="R1", kind="month",
                                   first=win.first)  # fmt: skip
    assert "The average of 2 homes" in html and "as of" in html
    assert f"{row.kwh:.1f}" in html
    # an aggregate only: neither home's own month is on the page
    neighbour = sum(Decimal(v) for d, v in b.items() if win.first <= d <= win.last) / 1000
    assert f"{neighbour:.1f}" not in html


def test_late_reads_are_taken_by_the_next_run_and_a_killed_run_is_redone(world, homes):
    mine, a, b = homes
    similar.compute()
    today = timezone.localdate()
    day = today - timedelta(days=2)
    meter = world.grid_a.meters[1]
    DailyEnergy.objects.filter(meter=meter, day=day).update(value=b[day] + 2_000)
    b[day] += 2_000
    similar.compute()  # the lookback redoes the last days, and their periods
    for kind in usage.KINDS:
        win = usage.window(kind, day)
        assert usage.similar_homes(mine, win).kwh == expected(a, b, win), kind
    # a run killed before the periods: the days stand, the next run finishes them
    SimilarHomes.objects.exclude(kind="day").delete()
    similar.compute()
    win = usage.window("year", today)
    assert usage.similar_homes(mine, win).kwh == expected(a, b, win)


def test_the_beat_task_runs_it():
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values()
               if e["task"] == "portal.compute_similar_homes"]  # fmt: skip
    assert len(entries) == 1
    assert tasks.compute_similar_homes() == 0  # nothing stored yet, nothing written
