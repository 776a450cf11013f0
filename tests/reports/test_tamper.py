"""Tamper, revenue protection and communication per meter, ranked (issue 16).

Period 8-14 May 2026 (UTC), history 1-7 May:

* NA000001: 10 Wh per interval both weeks (no drop); cover opened twice (code 44) and a
  reverse-energy event (48) on 10 May; unreachable now; 1 of 4 scheduled reads succeeded
  (25 %), that one in 40 s (slow). Score 3 + 2 + 1 + 1 + 1 = 8.
* NA000002: 20 Wh per interval, then 5 Wh (-75 %); its relay seen open on 12 May 10:00 and
  still 960 Wh on 13-14 May. Score 3 + 4 = 7.
* SB000001 (region B): a tamper event too, never in region A's answers.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from collection.models import JobRun, MeterReadResult, ReadJob
from meters.models import CommStatus, GridNode, Meter
from meters.store.writes import write_events
from reports import tamper
from reports.billing import Period
from tests.reports.test_balance import _write

pytestmark = pytest.mark.django_db

MAY1 = datetime(2026, 5, 1, tzinfo=UTC)
PERIOD = Period(date(2026, 5, 8), date(2026, 5, 14))
LOG = "0-0:99.98.0*255"


@pytest.fixture
def fleet(world, settings):
    settings.TIME_ZONE = "UTC"
    a, b = world.grid_a, world.grid_b
    m1, m2 = a.meters
    n = 96 * 14
    _write(m1, [10] * n, [0] * n)
    _write(m2, [20 if i < 96 * 7 else 5 for i in range(n)], [0] * n)
    _write(b.meters[0], [5] * n, [0] * n)
    day10 = datetime(2026, 5, 10, 12, tzinfo=UTC)
    write_events({
        (m1.pk, LOG, day10, 44): "[]", (m1.pk, LOG, day10 + timedelta(hours=1), 44): "[]",
        (m1.pk, LOG, day10 + timedelta(hours=2), 48): "[]",
        (m1.pk, LOG, MAY1, 44): "[]",  # before the period: not counted
        (b.meters[0].pk, LOG, day10, 44): "[]",
    })  # fmt: skip
    CommStatus.objects.create(meter=m1, unreachable=True, last_success=timezone.now())
    CommStatus.objects.create(
        meter=m2, relay_state="disconnected", relay_state_at=datetime(2026, 5, 12, 10, tzinfo=UTC)
    )
    job = ReadJob.objects.create(name="job a", organisation=a.organisation)
    for i, status in enumerate(("ok", "failed", "failed", "failed")):
        run = JobRun.objects.create(job=job, organisation=a.organisation)
        JobRun.objects.filter(pk=run.pk).update(created_at=day10 + timedelta(hours=i))
        started = day10 + timedelta(hours=i)
        MeterReadResult.objects.create(
            run=run, meter=m1, status=status, started_at=started,
            finished_at=started + timedelta(seconds=40),
        )  # fmt: skip
    return world


def test_findings_ranked_and_exact(fleet):
    ranked = tamper.findings(fleet.operator_a, PERIOD)
    assert [f.meter.serial for f in ranked] == ["NA000001", "NA000002"]
    one, two = ranked
    assert (one.tamper_events, one.reverse_events, one.last_tamper) == (
        2, 1, datetime(2026, 5, 10, 13, tzinfo=UTC)
    )  # fmt: skip
    assert (one.consumption, one.previous, one.change_percent) == (D(6720), D(6720), D("0.0"))
    assert (one.reads, one.reads_ok, one.success_percent, one.read_seconds) == (
        4, 1, D("25.0"), 40.0
    )  # fmt: skip
    assert one.unreachable and one.score == 8
    assert (two.consumption, two.previous, two.change_percent) == (
        D(3360), D(13440), D("-75.0")
    )  # fmt: skip
    assert two.open_relay_energy == D(960) and two.score == 7
    assert "consumption while disconnected" in two.flags


def test_peers(fleet, settings):
    """A third meter under the transformer makes a median (6,720 Wh): NA000002's 3,360 is
    below 0.6 of it."""
    a = fleet.grid_a
    point = GridNode.objects.create(kind="service_point", code="NA-SP3", name="SP3",
                                    parent=a.transformer, organisation=a.organisation)  # fmt: skip
    m3 = Meter.objects.create(serial="NA000003", meter_model=a.meters[0].meter_model,
                              service_point=point, host="127.0.0.1", port=4059)  # fmt: skip
    _write(m3, [30] * 96 * 14, [0] * 96 * 14)
    settings.AMI_TAMPER_PEER_SHARE = "0.6"
    ranked = {f.meter.serial: f for f in tamper.findings(fleet.operator_a, PERIOD)}
    assert ranked["NA000002"].peer_median == D(6720)
    assert "far below the meters of its transformer" in ranked["NA000002"].flags
    assert ranked["NA000003"].score == 0 and not ranked["NA000003"].flags


def test_page_export_and_api_scoped(fleet):
    client = Client()
    client.force_login(fleet.operator_a)
    url = reverse("reports:tamper")
    query = {"from": "2026-05-08", "to": "2026-05-14"}
    page = client.get(url, query)
    assert page.status_code == 200
    assert b"NA000001" in page.content and b"SB000001" not in page.content
    answer = client.get(url, {**query, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(answer.streaming_content).decode())))
    assert [r["meter"] for r in rows] == ["NA000001", "NA000002"]
    assert rows[0]["score"] == "8" and rows[1]["change_percent"] == "-75.0"
    api = APIClient()
    api.force_authenticate(fleet.operator_a)
    body = api.get("/api/reports/tamper/", query).json()
    assert [r["meter"] for r in body["results"]] == ["NA000001", "NA000002"]
    assert body["results"][1]["energy_while_open_wh"] == "960"
    api.force_authenticate(fleet.operator_b)
    other = api.get("/api/reports/tamper/", query).json()["results"]
    assert [r["meter"] for r in other] == ["SB000001", "SB000002"]  # the tamper first
    assert api.get("/api/reports/tamper/", {"from": "2026-13-01"}).status_code == 400
