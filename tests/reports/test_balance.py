"""Energy balance and line loss per transformer and feeder, every figure exact (issue 16).

Region A (UTC, 1-7 May 2026, 15-minute profiles, 96 intervals a day):

* NA000001: import 10 Wh and export 2 Wh per interval (net 8);
* NA000002: import 20 Wh per interval on 1-2 May, then 10 Wh (it under-registers);
* the transformer's check meter NACHK-T: import 29 Wh per interval (CT 1);
* the feeder's check meter NACHK-F: 15 Wh per interval stored, CT ratio 2 -> 30 Wh.

Transformer per day: input 2,784 Wh; delivered 2,688 (1-2 May) then 1,728; loss 96 (3.45 %)
then 1,056 (37.93 %). The week: input 19,488, delivered 14,016, loss 5,472 (28.08 %).
Feeder: input 20,160, loss 6,144 (30.48 %). NA000002's daily share falls exactly when the
loss rises (r = -1). On 8 May NA000001 has only 90 intervals: that day is incomplete.
Region B has its own transformer with a check meter, never in region A's answers.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from openpyxl import load_workbook
from rest_framework.test import APIClient

from meters.choices import MeterStatus
from meters.models import Channel, Meter
from meters.store import rollups
from meters.store.writes import write_intervals
from reports import balance, load
from reports.billing import Period

pytestmark = pytest.mark.django_db

MAY1 = datetime(2026, 5, 1, tzinfo=UTC)
QH = timedelta(minutes=15)
WEEK = Period(date(2026, 5, 1), date(2026, 5, 7))


def _write(meter, imports, exports, first=MAY1):
    """Interval rows from `first`: import and export Wh per interval (None: not written)."""
    channels = {c.obis: c for c in Channel.objects.filter(meter_model=meter.meter_model)}
    imp, exp = channels["1-0:1.29.0*255"], channels["1-0:2.29.0*255"]
    keep = [i for i, v in enumerate(imports) if v is not None]
    stamps = [first + QH * (i + 1) for i in keep]
    rows = SimpleNamespace(
        meter_id=meter.pk,
        group=imp.profile_group,
        timestamps=stamps,
        columns={
            imp.profile_column: SimpleNamespace(
                values=[imports[i] for i in keep], flags=[0] * len(keep)
            ),
            exp.profile_column: SimpleNamespace(
                values=[exports[i] for i in keep], flags=[0] * len(keep)
            ),
        },
    )
    write_intervals([rows])
    rollups.refresh(rollups.days_touched({meter.pk: (stamps[0], stamps[-1])}))


def _check_meter(grid, serial, node, ct="1"):
    return Meter.objects.create(
        serial=serial,
        meter_model=grid.meters[0].meter_model,
        check_node=node,
        status=MeterStatus.ACTIVE,
        ct_ratio=D(ct),
        host="127.0.0.1",
        port=4059,
    )


@pytest.fixture
def grid(world, settings):
    settings.TIME_ZONE = "UTC"
    a = world.grid_a
    m1, m2 = a.meters
    n = 96 * 8
    check_t = _check_meter(a, "NACHK-T", a.transformer)
    check_f = _check_meter(a, "NACHK-F", a.feeder, ct="2")
    _write(m1, [10 if i < 96 * 7 + 90 else None for i in range(n)], [2] * n)
    _write(m2, [20 if i < 192 else 10 for i in range(n)], [0] * n)
    _write(check_t, [29] * n, [0] * n)
    _write(check_f, [15] * n, [0] * n)
    b = world.grid_b
    check_b = _check_meter(b, "SBCHK-T", b.transformer)
    _write(b.meters[0], [5] * n, [0] * n)
    _write(check_b, [7] * n, [0] * n)
    return SimpleNamespace(world=world, a=a, b=b, m1=m1, m2=m2, check_t=check_t, check_f=check_f)


def _by_code(results):
    return {r.node.code: r for r in results}


def test_daily_balance_exact(grid):
    user = grid.world.operator_a
    results = _by_code(balance.balances(user, balance.nodes_for(user), WEEK))
    assert set(results) == {"NA-F1", "NA-T1"}
    t = results["NA-T1"]
    assert [m.serial for m in t.check_meters] == ["NACHK-T"] and t.meters == 2
    first, third = t.buckets[0], t.buckets[2]
    assert (first.input, first.delivered, first.loss, first.loss_percent) == (
        D(2784), D(2688), D(96), D("3.45")
    )  # fmt: skip
    assert (third.delivered, third.loss, third.loss_percent) == (D(1728), D(1056), D("37.93"))
    assert all(b.complete for b in t.buckets)
    assert (t.total.input, t.total.delivered, t.total.loss, t.total.loss_percent) == (
        D(19488), D(14016), D(5472), D("28.08")
    )  # fmt: skip
    assert "loss above alert" in t.flags
    f = results["NA-F1"]
    assert (f.total.input, f.total.delivered, f.total.loss, f.total.loss_percent) == (
        D(20160), D(14016), D(6144), D("30.48")
    )  # fmt: skip


def test_months_and_incomplete_days(grid):
    user = grid.world.operator_a
    eight = Period(date(2026, 5, 1), date(2026, 5, 8))
    t = _by_code(balance.balances(user, balance.nodes_for(user), eight))["NA-T1"]
    last = t.buckets[-1]
    assert not last.complete and last.loss_percent is None
    assert last.delivered == D(90 * 8 + 96 * 10)
    assert "1 of 8 incomplete" in t.flags
    assert t.total.loss_percent is None  # a missing meter would look like loss
    month = _by_code(balance.balances(user, balance.nodes_for(user), eight, "month"))["NA-T1"]
    assert [(b.label, b.input, b.complete) for b in month.buckets] == [
        ("2026-05", D(2784 * 8), False)
    ]


def test_node_detail_intervals_hints_and_shares(grid):
    user = grid.world.operator_a
    t = balance.node_balance(user, grid.a.transformer, WEEK, "interval")
    assert len(t.buckets) == 96 * 7 and all(b.complete for b in t.buckets)
    assert (t.buckets[0].input, t.buckets[0].delivered, t.buckets[0].loss) == (D(29), D(28), D(1))
    assert t.buckets[-1].loss == D(11)
    assert any(h.startswith("No-load part") for h in t.hints)
    shares = {s.meter.serial: s for s in t.shares}
    assert shares["NA000002"].correlation == -1.0
    assert shares["NA000002"].flags and not shares["NA000001"].flags
    assert shares["NA000001"].delivered == D(8 * 96 * 7)
    assert t.shares[0].meter.serial == "NA000002"  # the suspicious first
    f = balance.node_balance(user, grid.a.feeder, WEEK)
    assert [c.node.code for c in f.children] == ["NA-T1"]
    with pytest.raises(ValueError):
        balance.node_balance(user, grid.a.feeder, Period(date(2026, 4, 1), date(2026, 5, 7)),
                             "interval")  # fmt: skip


def test_hints_tell_technical_from_not():
    def buckets(no_load, percent):
        out = []
        for i in range(96):
            load = D(100 + 10 * (i % 12))
            start = MAY1 + QH * i
            out.append(balance.Bucket("", start, load + no_load + load * percent / 100, load, True))
        return out

    high = balance.hints(buckets(D(3), D(15)), None)
    assert any("suspect non-technical" in h for h in high)
    low = balance.hints(buckets(D(3), D(2)), None)
    assert any("(technical)" in h for h in low)
    assert any("No-load part: about 3 Wh" in h for h in low)


def test_negative_loss_is_flagged(grid):
    user = grid.world.operator_a
    grid.check_t.ct_ratio = D("0.5")  # a wrong CT ratio: input half of what it is
    grid.check_t.save()
    t = _by_code(balance.balances(user, balance.nodes_for(user), WEEK))["NA-T1"]
    assert t.total.loss < 0 and "negative loss" in t.flags
    detail = balance.node_balance(user, grid.a.transformer, WEEK)
    assert any("CT/VT" in h for h in detail.hints)


def test_check_meter_rules(grid):
    meter = grid.m1
    meter.check_node = grid.a.transformer
    with pytest.raises(ValidationError):
        meter.full_clean()
    grid.check_t.check_node = grid.a.service_points[0]
    with pytest.raises(ValidationError):
        grid.check_t.full_clean()
    assert grid.check_f.organisation == grid.a.organisation  # from the node


def test_pages_scoped_and_exports(grid):
    client = Client()
    client.force_login(grid.world.operator_a)
    url = reverse("reports:balance")
    page = client.get(url, {"from": "2026-05-01", "to": "2026-05-07"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "NA-T1" in text and "28.08" in text and "SB-" not in text
    answer = client.get(url, {"from": "2026-05-01", "to": "2026-05-07", "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(answer.streaming_content).decode())))
    t = {r["node"]: r for r in rows}["NA-T1"]
    assert (t["input_wh"], t["loss_wh"], t["loss_percent"]) == ("19488", "5472", "28.08")
    node = reverse("reports:balance-node", args=[grid.a.transformer.pk])
    detail = client.get(node, {"from": "2026-05-01", "to": "2026-05-07"})
    assert detail.status_code == 200 and b"<svg" in detail.content and b"NA000002" in detail.content
    xlsx = client.get(node, {"from": "2026-05-01", "to": "2026-05-07", "format": "xlsx"})
    sheet = load_workbook(io.BytesIO(b"".join(xlsx.streaming_content))).active
    values = list(sheet.values)
    assert values[0][:3] == ("node", "bucket", "input_wh") and values[1][1] == "2026-05-01"
    assert len(values) == 8
    assert (
        client.get(reverse("reports:balance-node", args=[grid.b.transformer.pk])).status_code == 404
    )
    assert client.get(reverse("reports:balance-node", args=[grid.a.region.pk])).status_code == 404


def test_api_scoped(grid):
    api = APIClient()
    api.force_authenticate(grid.world.operator_a)
    listed = api.get("/api/reports/energy-balance/", {"from": "2026-05-01", "to": "2026-05-07"})
    assert listed.status_code == 200
    by_code = {r["code"]: r for r in listed.json()["results"]}
    assert set(by_code) == {"NA-F1", "NA-T1"}
    assert by_code["NA-T1"]["total"]["loss_wh"] == "5472"
    url = f"/api/reports/energy-balance/{grid.a.transformer.pk}/"
    detail = api.get(url, {"from": "2026-05-01", "to": "2026-05-02", "resolution": "interval"})
    assert detail.status_code == 200
    body = detail.json()
    assert len(body["buckets"]) == 192 and body["buckets"][0]["loss_wh"] == "1"
    assert {s["serial"] for s in body["meter_shares"]} == {"NA000001", "NA000002"}
    assert api.get(f"/api/reports/energy-balance/{grid.b.transformer.pk}/").status_code == 404
    assert api.get(url, {"resolution": "week"}).status_code == 400
    api.force_authenticate(grid.world.operator_b)
    other = api.get("/api/reports/energy-balance/", {"from": "2026-05-01", "to": "2026-05-07"})
    assert {r["code"] for r in other.json()["results"]} == {"SB-F1", "SB-T1"}


# ------------------------------------------------------------------ load analysis (same fleet)


def test_load_of_a_transformer_from_its_check_meter(grid):
    """NACHK-T takes 29 Wh every 15 minutes: 0.116 kW flat; rating 200 kVA x 0.9 = 180 kW."""
    user = grid.world.operator_a
    profile = load.node_load(user, grid.a.transformer, WEEK)
    assert profile.source == "check meters" and len(profile.demand) == 96 * 7
    peak_at, peak = profile.peak
    assert (peak, peak_at) == (D("0.116"), MAY1 + QH)  # the first of equal peaks
    assert (profile.average, profile.load_factor) == (D("0.116"), D("1.000"))
    assert (profile.rated_kw, profile.utilisation, profile.overload_hours) == (
        D("180.00"), D("0.1"), 0
    )  # fmt: skip
    grid.a.transformer.rated_kva = D("0.12")  # 0.108 kW: every interval above it
    profile = load.node_load(user, grid.a.transformer, WEEK)
    assert profile.overload_hours == D(7 * 24) and "overloaded 168 h" in profile.flags()[0]


def test_load_without_check_meter_and_per_class(grid):
    user = grid.world.operator_a
    grid.check_f.check_node = None  # the feeder falls back to the meters below
    grid.check_f.organisation = grid.a.organisation
    grid.check_f.save()
    profile = load.node_load(user, grid.a.feeder, WEEK)
    assert profile.source == "meters below"
    # 1-2 May: (10 - 2) + 20 = 28 Wh -> 0.112 kW; then 18 Wh -> 0.072 kW
    assert profile.peak[1] == D("0.112") and min(kw for _t, kw in profile.demand) == D("0.072")
    assert profile.load_factor == D((D("0.112") * 2 + D("0.072") * 5) / 7 / D("0.112")).quantize(
        D("0.001")
    )
    curve = profile.duration_curve(points=10)
    assert curve[0] == D("0.112") and curve[-1] == D("0.072") and len(curve) == 10
    rows = list(load.curve_rows(profile))
    assert rows[0]["rank"] == 1 and rows[-1]["hours"] == D(168)
    classes = {p.key: p for p in load.class_loads(user, WEEK)}
    assert set(classes) == {"(none)"} and classes["(none)"].meters == 2
    with pytest.raises(ValueError):
        load.node_load(user, grid.a.feeder, Period(date(2026, 4, 1), date(2026, 5, 7)))


def test_load_pages_and_api_scoped(grid):
    client = Client()
    client.force_login(grid.world.operator_a)
    week = {"from": "2026-05-01", "to": "2026-05-07"}
    page = client.get(reverse("reports:load"), week)
    assert page.status_code == 200 and b"NA-T1" in page.content and b"SB-" not in page.content
    node = reverse("reports:load-node", args=[grid.a.transformer.pk])
    detail = client.get(node, week)
    assert detail.status_code == 200 and detail.content.count(b"<svg") == 2
    answer = client.get(node, {**week, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(answer.streaming_content).decode())))
    assert len(rows) == 96 * 7 and rows[0]["demand_kw"] == "0.116"
    listing = client.get(reverse("reports:load"), {**week, "format": "csv"})
    keys = [r["node_or_class"] for r in csv.DictReader(
        io.StringIO(b"".join(listing.streaming_content).decode()))]  # fmt: skip
    assert keys == ["NA-F1", "NA-T1", "(none)"]
    assert client.get(reverse("reports:load-node", args=[grid.b.transformer.pk])).status_code == 404
    api = APIClient()
    api.force_authenticate(grid.world.operator_a)
    listed = api.get("/api/reports/load/", week).json()["results"]
    assert [r["key"] for r in listed] == ["NA-F1", "NA-T1"]
    assert listed[1]["peak_kw"] == "0.116" and listed[1]["rated_kw"] == "180.00"
    classes = api.get("/api/reports/load/", {**week, "classes": "true"}).json()["results"]
    assert [r["key"] for r in classes] == ["(none)"]
    body = api.get(f"/api/reports/load/{grid.a.transformer.pk}/", week).json()
    assert len(body["demand"]) == 96 * 7 and body["duration_curve_kw"][0] == "0.116"
    assert api.get(f"/api/reports/load/{grid.b.transformer.pk}/").status_code == 404
    assert api.get("/api/reports/load/", {"classes": "maybe"}).status_code == 400
    assert (
        api.get("/api/reports/load/", {"from": "2026-01-01", "to": "2026-05-07"}).status_code == 400
    )
