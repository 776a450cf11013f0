"""Customer patterns: shapes, clusters, class shapes and changed customers (issue 16).

Region A gets six more customer meters; every meter draws 10 Wh per 15 minutes except in
its four peak hours, 40 Wh (an hour: 40 Wh off peak, 160 Wh at peak; the mean hour 60 Wh,
so a shape is 2/3 off peak and 8/3 at peak, weekdays and weekends alike). 1-28 May 2026
(UTC); the period is 15-28 May, the 14 days before it the history.

* class R (residential): NA000001, NA000002, NR1, NR2 peak 18-21 h; NR3 peaked 18-21 h
  before and 0-3 h in the period: 1/3 of its day's energy moved (eight hours each differ by
  1/9 - 1/36 of the day), flagged at the 0.25 threshold;
* class C (commercial): NC1, NC2, NC3 peak 10-13 h;
* SB000001 (region B): a night peaker, never in region A's answers (SB000002: no data).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import User
from meters.choices import MeterStatus, NodeKind
from meters.demo import DEMO_LOGINS, load_demo
from meters.models import Channel, Customer, GridNode, Meter
from meters.store import HourlyEnergy, rollups
from meters.store.writes import write_intervals
from reports import patterns
from reports.billing import Period

pytestmark = pytest.mark.django_db

MAY1 = datetime(2026, 5, 1, tzinfo=UTC)
QH = timedelta(minutes=15)
DAYS = 28
PERIOD = Period(date(2026, 5, 15), date(2026, 5, 28))
EVENING, DAYTIME, NIGHT = range(18, 22), range(10, 14), range(0, 4)


def _write(meter, peak_before, peak_now):
    channels = {c.obis: c for c in Channel.objects.filter(meter_model=meter.meter_model)}
    imp = channels["1-0:1.29.0*255"]
    stamps = [MAY1 + QH * (i + 1) for i in range(96 * DAYS)]
    values = []
    for ts in stamps:
        start = ts - QH
        peak = peak_before if start.day < 15 else peak_now
        values.append(40 if start.hour in peak else 10)
    rows = SimpleNamespace(
        meter_id=meter.pk, group=imp.profile_group, timestamps=stamps,
        columns={imp.profile_column: SimpleNamespace(values=values, flags=[0] * len(values))},
    )  # fmt: skip
    write_intervals([rows])
    rollups.refresh(rollups.days_touched({meter.pk: (stamps[0], stamps[-1])}))


def _meter(grid, serial, tariff):
    point = GridNode.objects.create(
        kind=NodeKind.SERVICE_POINT, code=f"SP-{serial}", name=serial, parent=grid.transformer,
        organisation=grid.organisation,
    )  # fmt: skip
    Customer.objects.create(account_number=f"ACC-{serial}", name=serial, service_point=point,
                            tariff_code=tariff)  # fmt: skip
    return Meter.objects.create(
        serial=serial, meter_model=grid.meters[0].meter_model, service_point=point,
        organisation=grid.organisation, status=MeterStatus.ACTIVE,
    )  # fmt: skip


@pytest.fixture
def fleet(world, settings):
    settings.TIME_ZONE = "UTC"
    settings.AMI_PATTERN_CHANGE_SHARE = "0.25"
    a = world.grid_a
    for customer in a.customers:
        customer.tariff_code = "R"
        customer.save()
    for meter in a.meters:
        _write(meter, EVENING, EVENING)
    for serial in ("NR1", "NR2"):
        _write(_meter(a, serial, "R"), EVENING, EVENING)
    _write(_meter(a, "NR3", "R"), EVENING, NIGHT)
    for serial in ("NC1", "NC2", "NC3"):
        _write(_meter(a, serial, "C"), DAYTIME, DAYTIME)
    _write(world.grid_b.meters[0], NIGHT, NIGHT)
    return world


def _analysis(user, k=2, **kwargs):
    return patterns.analyse(patterns.customer_meters(user, **kwargs), PERIOD, k)


def test_shapes_clusters_classes_and_change_exact(fleet):
    analysis = _analysis(fleet.operator_a)
    by_serial = {p.meter.serial: p for p in analysis.patterns}
    assert set(by_serial) == {"NA000001", "NA000002", "NR1", "NR2", "NR3", "NC1", "NC2", "NC3"}
    nr1 = by_serial["NR1"]
    assert [round(v, 6) for v in nr1.shape[:24]] == [
        round(8 / 3 if h in EVENING else 2 / 3, 6) for h in range(24)
    ]
    assert list(nr1.shape[24:]) == list(nr1.shape[:24])
    assert nr1.energy == 14 * 1440 and nr1.previous_energy == 14 * 1440  # Wh
    assert nr1.change == 0 and not nr1.changed
    nr3 = by_serial["NR3"]
    assert nr3.change == pytest.approx(1 / 3, abs=0.001) and nr3.changed
    assert [p.meter.serial for p in analysis.changed] == ["NR3"]
    # two clusters: the evening peakers and the daytime ones with NR3 (a night peaker now:
    # as far from both shapes, it pulls the daytime centre towards it), the farthest from
    # its centre of all; numbered by size, then by centre
    clusters = {n: {s for s, p in by_serial.items() if p.cluster == n} for n in (1, 2)}
    assert clusters[1] == {"NA000001", "NA000002", "NR1", "NR2"}
    assert clusters[2] == {"NC1", "NC2", "NC3", "NR3"}
    assert analysis.clusters[0].label == "evening peak 18:00 ×2.7"
    assert analysis.clusters[1].label == "morning peak 10:00 ×2.2"
    assert (analysis.clusters[0].classes, analysis.clusters[1].classes) == (
        {"R": 4}, {"C": 3, "R": 1}
    )  # fmt: skip
    assert by_serial["NR1"].distance == 0
    assert by_serial["NR3"].distance > by_serial["NC1"].distance > 0
    # the typical shape per class: C exactly the daytime shape
    assert [round(v, 6) for v in analysis.classes["C"][:24]] == [
        round(8 / 3 if h in DAYTIME else 2 / 3, 6) for h in range(24)
    ]
    assert set(analysis.classes) == {"C", "R"}


def test_same_data_same_clusters(fleet):
    one = {p.meter.serial: p.cluster for p in _analysis(fleet.operator_a, k=3).patterns}
    two = {p.meter.serial: p.cluster for p in _analysis(fleet.operator_a, k=3).patterns}
    assert one == two


def test_class_subtree_and_scope(fleet):
    assert {p.meter.serial for p in _analysis(fleet.operator_a, customer_class="C").patterns} == {
        "NC1", "NC2", "NC3"
    }  # fmt: skip
    assert {p.meter.serial for p in _analysis(fleet.operator_b).patterns} == {
        "SB000001", "SB000002"
    }  # fmt: skip
    # region B's transformer is no subtree of region A's reader
    analysis = _analysis(fleet.operator_a, node=fleet.grid_b.transformer)
    assert analysis.patterns == [] and analysis.clusters == []
    assert patterns.class_names(fleet.operator_a) == ["C", "R"]


def test_meter_without_intervals_has_no_shape(fleet):
    lone = _meter(fleet.grid_a, "NX1", "R")
    analysis = _analysis(fleet.operator_a)
    pattern = next(p for p in analysis.patterns if p.meter == lone)
    assert (pattern.shape, pattern.cluster, pattern.change) == (None, None, None)
    assert pattern.flags == ["no intervals in the period"]


def _page(user, **params):
    client = Client()
    client.force_login(user)
    return client.get(reverse("reports:patterns"), params)


def test_page_export_and_bad_input(fleet):
    period = {"from": "2026-05-15", "to": "2026-05-28", "k": "2"}
    response = _page(fleet.operator_a, **period)
    assert response.status_code == 200
    text = response.content.decode()
    assert "NR3" in text and "SB000001" not in text and "pattern changed" in text
    assert "evening peak 18:00" in text and "<svg" in text
    response = _page(fleet.operator_a, **{**period, "k": "40"})
    assert response.status_code == 200
    assert "Bad number of clusters" in response.content.decode()
    response = _page(fleet.operator_a, **period, format="csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0]["meter"] == "NR3" and rows[0]["moved_share"] == "0.333"  # most changed first
    assert {r["meter"] for r in rows} == {
        "NA000001", "NA000002", "NR1", "NR2", "NR3", "NC1", "NC2", "NC3"
    }  # fmt: skip
    nc1 = next(r for r in rows if r["meter"] == "NC1")
    assert (nc1["weekday_10"], nc1["weekday_09"], nc1["customer_class"]) == ("2.667", "0.667", "C")
    response = _page(fleet.operator_a, **period, format="xlsx")
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('.xlsx"')


def test_api_summary_paged_and_scoped(fleet):
    client = APIClient()
    client.force_authenticate(fleet.operator_a)
    url = "/api/reports/patterns/"
    data = client.get(url, {"from": "2026-05-15", "to": "2026-05-28", "k": "2",
                            "page_size": 3}).json()  # fmt: skip
    assert data["count"] == 8 and len(data["results"]) == 3
    assert data["results"][0]["serial"] == "NR3" and data["results"][0]["changed"] is True
    assert data["summary"]["changed"] == 1 and len(data["summary"]["clusters"]) == 2
    assert data["summary"]["clusters"][0]["weekday"][18] == "2.667"
    assert client.get(url, {"k": "1"}).status_code == 400
    assert client.get(url, {"sort": "nonsense"}).status_code == 400
    assert client.get(url, {"node": fleet.grid_b.transformer.pk}).status_code == 400
    client.force_authenticate(fleet.operator_b)
    data = client.get(url, {"from": "2026-05-15", "to": "2026-05-28"}).json()
    assert [r["serial"] for r in data["results"]] == ["SB000001", "SB000002"]


def test_the_demo_report_shows_clusters_from_the_hourly_rollup():
    """`make run`'s demo: the fleet's recent load profile went through ingest, which keeps
    the hourly rollup, so the page's default period (the last 28 days) has shapes and
    clusters; every shape's hours are the rollup's, which are the intervals' sums."""
    load_demo()
    north = next(login for login in DEMO_LOGINS if login.username == "north-engineer")
    user = User.objects.get(username=north.username)
    analysis = patterns.analyse(patterns.customer_meters(user), Period.last_days(28))
    assert analysis.shaped >= 10 and len(analysis.clusters) >= 2
    assert HourlyEnergy.objects.filter(day__gte=analysis.period.first).exists()
