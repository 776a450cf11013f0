"""Billing determinants on a small fleet, every figure exact (issue 16).

May 2026 in UTC, 15-minute profiles: 31 x 96 = 2,976 intervals per channel.

* NA000001: import 10 Wh per interval (29,760 Wh), the first 10 intervals estimated in both
  billed profiles (share 20 / 5,952 = 0.0034);
  export 0 Wh per interval. Register 1.8.0: an estimated read at 30 April 23:45 (99,990) and
  an actual one at 1 May 02:00 (100,020): the actual wins though further; 1 June 00:00:
  129,800 -> consumption 29,780, difference +20 against the profile. TOU 1.8.1: 60,000 ->
  80,000 (no profile). Maximum demand 1.6.0: 4,200 W at 14 May 18:15. Export 2.8.0: no
  reads -> the interval sum (0), flagged.
* NA000002: import 20 Wh, 200 intervals never written, 100 estimated (shares 0.0336 and
  0.0672: 0.1008 > 0.05, held). 1.8.0 only an estimated start read -> the interval sum
  20 x 2,776 = 55,520, flagged "end read missing".
* SB000001 (the other organisation): reads and intervals, never in region A's report.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from openpyxl import load_workbook
from rest_framework.test import APIClient

from meters.choices import ChannelKind
from meters.models import Channel
from meters.store import Quality, rollups
from meters.store.writes import write_intervals, write_registers
from reports import billing

pytestmark = pytest.mark.django_db

MAY1, JUNE1 = datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
QH = timedelta(minutes=15)
N = 2976
FORMULA = '=HYPERLINK("http://x","y")'


def _channel(model, obis, name, unit="Wh", kind=ChannelKind.REGISTER):
    return Channel.objects.create(meter_model=model, obis=obis, name=name, unit=unit, kind=kind)


def _profile(meter, channels, values, flags):
    """One group of interval rows: `values`/`flags` per interval end (None: not written)."""
    stamps = [MAY1 + QH * (i + 1) for i in range(N)]
    keep = [i for i in range(N) if values[i] is not None]
    group = channels[0].profile_group
    columns = {
        c.profile_column: SimpleNamespace(
            values=[v if c.obis.startswith("1-0:1") else 0 for v in (values[i] for i in keep)],
            flags=[flags[i] for i in keep],
        )
        for c in channels
    }
    rows = SimpleNamespace(
        meter_id=meter.pk, group=group, timestamps=[stamps[i] for i in keep], columns=columns
    )
    write_intervals([rows])
    # as ingest does: the billing sums read the daily rollup
    rollups.refresh(rollups.days_touched({meter.pk: (rows.timestamps[0], rows.timestamps[-1])}))


@pytest.fixture
def fleet(world, settings):
    settings.TIME_ZONE = "UTC"
    settings.AMI_BILLING_MAX_ESTIMATED_SHARE = "0.05"
    model = world.meter_model
    ch = {c.obis: c for c in Channel.objects.filter(meter_model=model)}
    tou = _channel(model, "1-0:1.8.1*255", "Import rate 1")
    demand = _channel(model, "1-0:1.6.0*255", "Maximum demand import", unit="W")
    imp, exp = ch["1-0:1.8.0*255"], ch["1-0:2.8.0*255"]
    profiles = [ch["1-0:1.29.0*255"], ch["1-0:2.29.0*255"]]
    m1, m2 = world.grid_a.meters
    b1 = world.grid_b.meters[0]
    _profile(m1, profiles, [10] * N, [Quality.ESTIMATED if i < 10 else 0 for i in range(N)])
    _profile(m2, profiles, [None if 1000 <= i < 1200 else 20 for i in range(N)],
             [Quality.ESTIMATED if i >= N - 100 else 0 for i in range(N)])  # fmt: skip
    _profile(b1, profiles, [5] * N, [0] * N)
    est, edited = int(Quality.ESTIMATED), int(Quality.EDITED)
    write_registers({
        (m1.pk, imp.pk, MAY1 - QH): [99990, None, est],
        (m1.pk, imp.pk, MAY1 + QH * 8): [100020, None, 0],
        (m1.pk, imp.pk, JUNE1): [129800, None, 0],
        (m1.pk, imp.pk, JUNE1 + QH): [129801, None, edited],
        (m1.pk, tou.pk, MAY1): [60000, None, 0],
        (m1.pk, tou.pk, JUNE1): [80000, None, 0],
        (m1.pk, demand.pk, JUNE1): [4200, datetime(2026, 5, 14, 18, 15, tzinfo=UTC), 0],
        (m2.pk, imp.pk, MAY1): [5000, None, est],
        (b1.pk, imp.pk, MAY1): [1, None, 0],
        (b1.pk, imp.pk, JUNE1): [2, None, 0],
    })  # fmt: skip
    return SimpleNamespace(world=world, m1=m1, m2=m2, b1=b1, tou=tou, exp=exp)


def _results(user, **kwargs):
    meters = billing.meters_for(user, **kwargs)
    return {
        r.meter.serial: r for r in billing.determinants(meters, billing.Period.month("2026-05"))
    }


def test_determinants_exact(fleet):
    results = _results(fleet.world.operator_a)
    assert set(results) == {"NA000001", "NA000002"}
    one = {row["obis"]: row for row in results["NA000001"].rows}
    total = one["1-0:1.8.0*255"]
    assert (total["start_value"], total["start_class"], total["start_at"]) == (
        D(100020),
        "actual",
        MAY1 + QH * 8,
    )
    assert (total["end_value"], total["end_class"]) == (D(129800), "actual")
    assert (total["consumption"], total["source"]) == (D(29780), "registers")
    assert (total["profile_sum"], total["difference"]) == (D(29760), D(20))
    rate1 = one["1-0:1.8.1*255"]
    assert (rate1["consumption"], rate1["profile_sum"], rate1["difference"]) == (
        D(20000),
        None,
        None,
    )
    demand = one["1-0:1.6.0*255"]
    assert (demand["end_value"], demand["demand_at"]) == (
        D(4200),
        datetime(2026, 5, 14, 18, 15, tzinfo=UTC),
    )
    export = one["1-0:2.8.0*255"]
    assert (export["consumption"], export["source"]) == (D(0), billing.INTERVAL_SUM)
    assert "start and end reads missing" in export["flags"]
    assert results["NA000001"].estimated_share == D("0.0034")
    assert results["NA000001"].missing_share == D("0.0000")
    assert not results["NA000001"].held

    two = results["NA000002"]
    total = {row["obis"]: row for row in two.rows}["1-0:1.8.0*255"]
    assert (total["start_value"], total["start_class"], total["end_value"]) == (
        D(5000),
        "estimated",
        None,
    )
    assert (total["consumption"], total["source"]) == (D(55520), billing.INTERVAL_SUM)
    assert "end read missing" in total["flags"]
    # Two billed profiles (import and export), each 2,976 expected, 200 missing, 100 estimated.
    assert (two.estimated_share, two.missing_share) == (D("0.0336"), D("0.0672"))
    assert two.held and "held" in total["flags"]


def test_best_read_prefers_actual_then_estimated_then_substituted():
    at = MAY1

    def read(minutes, flags):
        return SimpleNamespace(read_at=at + timedelta(minutes=minutes), quality=flags)

    sub, est, act = read(0, Quality.EDITED), read(5, Quality.ESTIMATED), read(-600, 0)
    assert billing.best_read([sub, est, act], at) is act
    assert billing.best_read([sub, est], at) is est
    assert billing.best_read([sub], at) is sub
    assert billing.best_read([read(60 * 25, 0)], at) is None  # outside the 24 h window


def test_scoping_and_subtree(fleet):
    world = fleet.world
    assert set(_results(world.operator_b)) == {"SB000001", "SB000002"}
    assert set(_results(world.operator_a, node=world.grid_a.service_points[1])) == {"NA000002"}


def _page(user, **params):
    client = Client()
    client.force_login(user)
    return client.get("/reports/billing/", {"month": "2026-05", **params})


def test_page_paged_and_sorted(fleet):
    response = _page(fleet.world.operator_a, sort="-serial")
    assert response.status_code == 200
    text = response.content.decode()
    assert text.index("NA000002") < text.index("NA000001")
    assert "SB000001" not in text and "29780" in text
    assert "2 meters" in text


def test_export_held_back_then_exported_with_held_listed(fleet):
    response = _page(fleet.world.operator_a, format="csv")
    assert response.status_code == 409
    assert "Content-Disposition" not in response
    assert "Export held back" in response.content.decode()
    assert "NA000002" in response.content.decode()

    response = _page(fleet.world.operator_a, format="csv", include_held="1")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    head, held = text.split("held meters")
    rows = list(csv.DictReader(io.StringIO(head.strip())))
    assert {r["meter"] for r in rows} == {"NA000001"}
    total = next(r for r in rows if r["register"] == "1-0:1.8.0*255")
    assert (total["consumption"], total["interval_sum"], total["difference"]) == (
        "29780",
        "29760",
        "20",
    )
    assert "NA000002" in held and "SB000001" not in text

    response = _page(fleet.world.operator_a, format="xlsx", include_held="1")
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    assert book.sheetnames == ["Billing determinants", "Held meters"]
    assert {row[0] for row in book["Held meters"].iter_rows(min_row=2, values_only=True)} == {
        "NA000002"
    }


def test_export_without_held_meters_is_not_held(fleet, settings):
    settings.AMI_BILLING_MAX_ESTIMATED_SHARE = "0.5"
    response = _page(fleet.world.operator_a, format="csv")
    assert response.status_code == 200
    assert "held meters" not in b"".join(response.streaming_content).decode()


def test_formula_in_a_register_name_is_text(fleet):
    Channel.objects.filter(pk=fleet.tou.pk).update(name=FORMULA)
    response = _page(fleet.world.operator_a, format="csv", include_held="1")
    text = b"".join(response.streaming_content).decode()
    row = next(r for r in csv.reader(io.StringIO(text)) if r and r[2] == "1-0:1.8.1*255")
    assert row[3] == "'" + FORMULA
    response = _page(fleet.world.operator_a, format="xlsx", include_held="1")
    book = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    names = [row[3] for row in book.worksheets[0].iter_rows(min_row=2, values_only=True)]
    assert "'" + FORMULA in names


def test_api_paged_exact_and_scoped(fleet):
    client = APIClient()
    client.force_authenticate(fleet.world.operator_a)
    response = client.get("/api/reports/billing/", {"month": "2026-05", "page_size": 1})
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["count"] == 2 and data["next"] and data["threshold"] == "0.05"
    first = data["results"][0]
    assert (first["serial"], first["held"], first["estimated_share"]) == (
        "NA000001",
        False,
        "0.0034",
    )
    total = next(r for r in first["registers"] if r["obis"] == "1-0:1.8.0*255")
    assert (total["consumption"], total["difference"], total["start_class"]) == (
        "29780",
        "20",
        "actual",
    )
    second = client.get(data["next"]).json()["results"][0]
    assert (second["serial"], second["held"]) == ("NA000002", True)
    foreign = client.get("/api/reports/billing/", {"node": fleet.world.grid_b.feeder.pk})
    assert foreign.status_code == 404
    assert client.get("/api/reports/billing/", {"month": "2026-13"}).status_code == 400
    client.force_authenticate(fleet.world.operator_b)
    serials = [
        r["serial"]
        for r in client.get("/api/reports/billing/", {"month": "2026-05"}).json()["results"]
    ]
    assert serials == ["SB000001", "SB000002"]


def test_on_demand_period_of_one_day(fleet):
    """1 May alone: the read window shrinks to 12 h, so the 02:00 read is the start read only;
    no read near 2 May 00:00, so the consumption is the day's 96 intervals x 10 Wh."""
    period = billing.Period.parse(None, "2026-05-01", "2026-05-01")
    assert period.window == timedelta(hours=12)
    meters = billing.meters_for(fleet.world.operator_a)
    one = next(billing.determinants(meters, period))
    total = {row["obis"]: row for row in one.rows}["1-0:1.8.0*255"]
    assert (total["start_value"], total["end_value"]) == (D(100020), None)
    assert (total["consumption"], total["source"]) == (D(960), billing.INTERVAL_SUM)
    assert (one.estimated_share, one.missing_share) == (
        D("0.1042"),
        D("0.0000"),
    )  # 2 x 10 of 2 x 96
    response = _page(fleet.world.operator_a, **{"from": "2026-05-01", "to": "2026-05-01"})
    assert response.status_code == 200 and "960" in response.content.decode()
    assert _page(fleet.world.operator_a, month="2026-99").status_code == 200  # falls back


def test_api_by_meter_cursor_pages_are_the_whole_report(fleet):
    """`/api/reports/billing/by-meter/`: every cursor page joined is the paged report's rows,
    by meter id; a page costs as many queries for 1 meter as for 2; B's meters, B's node and
    a forged cursor are refused."""
    client = APIClient()
    client.force_authenticate(fleet.world.operator_a)
    month = {"month": "2026-05"}
    full = client.get("/api/reports/billing/", {**month, "page_size": 1000}).json()
    response = client.get("/api/reports/billing/by-meter/", {**month, "page_size": 1})
    rows, pages = [], 0
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["threshold"] == full["threshold"]
        rows += body["results"]
        pages += 1
        if not body["next"]:
            break
        response = client.get(body["next"])
    by_id = [m.serial for m in sorted(fleet.world.grid_a.meters, key=lambda m: m.pk)]
    assert [r["serial"] for r in rows] == by_id and pages == len(by_id)
    assert sorted(rows, key=lambda r: r["serial"]) == sorted(
        full["results"], key=lambda r: r["serial"]
    )
    counts = []
    for size in (1, 2):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(
                "/api/reports/billing/by-meter/", {**month, "page_size": size}
            ).status_code == 200  # fmt: skip
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    foreign = client.get("/api/reports/billing/by-meter/", {"node": fleet.world.grid_b.feeder.pk})
    assert foreign.status_code == 404
    forged = client.get("/api/reports/billing/by-meter/", {**month, "cursor": "WzFd:1x"})
    assert forged.status_code == 400 and "cursor" in forged.json()
    client.force_authenticate(fleet.world.operator_b)
    theirs = client.get("/api/reports/billing/by-meter/", month).json()["results"]
    assert [r["serial"] for r in theirs] == ["SB000001", "SB000002"]
