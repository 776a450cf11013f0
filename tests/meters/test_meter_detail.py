"""The meter page and its series API: scoping, values as ingested, downsampling, flags."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client

from collection.choices import ResultStatus, RunKind, RunStatus
from collection.models import JobRun, MeterReadResult
from collection.panels import phasor_diagram
from meters.models import Channel, CommStatus
from meters.store import DailyEnergy, Quality
from tests.api_matrix import client_for as api_client_for

from ._data import (
    DAYS,
    EXPORT,
    GAP,
    IMPORT,
    MISSING_AT,
    QH,
    T0,
    expected,
    ingest_days,
    ingest_reads,
    ingest_some_events,
)

pytestmark = pytest.mark.django_db


def page_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def series(user, meter, **params):
    params.setdefault("channels", IMPORT)
    return api_client_for(user).get(f"/api/meters/{meter.pk}/series/", params)


@pytest.fixture
def meter(world):
    meter = world.grid_a.meters[0]
    ingest_days(meter)
    return meter


def test_detail_page_is_scoped_and_masks_secrets(world, meter):
    client = page_client(world.operator_a)
    own = client.get(f"/meters/{meter.serial}/")
    assert own.status_code == 200
    html = own.content.decode()
    assert "secret-pw-1" not in html
    for section in ("load-profile", "register-history", "phasor-card", "events", "meter-runs"):
        assert f'id="{section}"' in html
    assert f"/api/meters/{meter.pk}/series/" in html
    assert client.get(f"/meters/{world.grid_b.meters[0].serial}/").status_code == 404
    assert page_client(world.customer).get(f"/meters/{meter.serial}/").status_code == 403


def test_series_of_another_organisation_is_404(world, meter):
    other = world.grid_b.meters[0]
    ingest_days(other, days=1)
    assert series(world.operator_a, other).status_code == 404
    assert series(world.operator_b, meter).status_code == 404
    assert series(world.operator_b, other).status_code == 200
    assert series(world.customer, meter).status_code == 403
    assert series(world.superuser, other).status_code == 200


def test_raw_series_equals_what_was_ingested_with_flags(world, meter):
    end = T0 + timedelta(days=DAYS)
    body = series(
        world.operator_a, meter, channels=f"{IMPORT},{EXPORT}", start=T0.isoformat(),
        end=end.isoformat(), resolution="raw",
    ).json()  # fmt: skip
    assert body["resolution"] == "raw"
    imp, exp = body["channels"]
    assert (imp["obis"], exp["obis"], imp["unit"]) == (IMPORT, EXPORT, "Wh")
    assert len(imp["timestamps"]) == DAYS * 96  # the gap was estimated, so every row exists
    for i in range(DAYS * 96):
        value, flags = imp["values"][i], imp["quality"][i]
        assert imp["timestamps"][i] == (T0 + QH * (i + 1)).isoformat()
        if i not in GAP:
            assert exp["values"][i] == str(expected(meter.serial, 2, i))
        if i == MISSING_AT:
            assert value is None and flags & Quality.MISSING
        elif i in GAP:
            assert flags & Quality.ESTIMATED and value is not None
        else:
            assert value == str(expected(meter.serial, 1, i)) and flags == 0


def test_hourly_buckets_sum_the_intervals(world, meter):
    end = T0 + timedelta(days=1)
    body = series(
        world.operator_a, meter, channels=EXPORT, start=T0.isoformat(), end=end.isoformat(),
        resolution="hour",
    ).json()  # fmt: skip
    ch = body["channels"][0]
    assert body["resolution"] == "hour" and ch["aggregate"] == "sum"
    assert len(ch["values"]) == 24
    for h in range(24):
        assert ch["timestamps"][h] == (T0 + timedelta(hours=h)).isoformat()
        assert ch["counts"][h] == 4
        assert ch["quality"][h] == (Quality.ESTIMATED if h == GAP[0] // 4 else 0)
        if h != GAP[0] // 4:  # that hour holds the two estimated intervals
            assert Decimal(ch["values"][h]) == sum(
                expected(meter.serial, 2, 4 * h + j) for j in range(4)
            )


def test_hourly_buckets_carry_estimated_and_missing(world, meter):
    body = series(
        world.operator_a, meter, start=T0.isoformat(), end=(T0 + timedelta(hours=12)).isoformat(),
        resolution="hour",
    ).json()  # fmt: skip
    flags = body["channels"][0]["quality"]
    assert flags[MISSING_AT // 4] & Quality.MISSING  # hour 2 lacks one value
    assert body["channels"][0]["counts"][MISSING_AT // 4] == 3
    assert flags[GAP[0] // 4] & Quality.ESTIMATED
    assert flags[0] == 0


def test_daily_and_monthly_come_from_the_rollup(world, meter):
    end = T0 + timedelta(days=DAYS)
    body = series(
        world.operator_a, meter, channels=EXPORT, start=T0.isoformat(), end=end.isoformat(),
        resolution="day",
    ).json()  # fmt: skip
    ch = body["channels"][0]
    raw = series(
        world.operator_a, meter, channels=EXPORT, start=T0.isoformat(), end=end.isoformat(),
        resolution="raw",
    ).json()["channels"][0]["values"]  # fmt: skip
    sums = [sum(Decimal(v) for v in raw[96 * d : 96 * (d + 1)]) for d in range(DAYS)]
    assert [Decimal(v) for v in ch["values"]] == sums
    # Days without the estimated gap equal the simulator's model exactly.
    assert sums[1:] == [
        sum(expected(meter.serial, 2, 96 * d + i) for i in range(96)) for d in range(1, DAYS)
    ]
    assert ch["counts"] == [96] * DAYS
    assert ch["quality"] == [Quality.ESTIMATED] + [0] * (DAYS - 1)
    channel = Channel.objects.get(meter_model=meter.meter_model, obis=EXPORT)
    assert DailyEnergy.objects.filter(meter_id=meter.pk, channel=channel).count() == DAYS
    month = series(
        world.operator_a, meter, channels=EXPORT, start=T0.isoformat(), end=end.isoformat(),
        resolution="month",
    ).json()["channels"][0]  # fmt: skip
    assert [Decimal(v) for v in month["values"]] == [sum(sums)]
    assert month["timestamps"] == [T0.isoformat()]
    # Three days of June are not a whole month; the estimated gap shows too.
    assert month["quality"] == [Quality.MISSING | Quality.ESTIMATED]
    imp_day = series(
        world.operator_a, meter, start=T0.isoformat(), end=end.isoformat(), resolution="day"
    ).json()["channels"][0]
    assert imp_day["quality"][0] == Quality.ESTIMATED | Quality.MISSING


def test_averages_for_quantities_that_are_not_energy(world, meter):
    from collection.ingest import ingest_profiles
    from collection.protocols.base import Channel as Col
    from collection.protocols.base import ProfileBlock, ProfileRow

    Channel.objects.create(
        meter_model=meter.meter_model, obis="1-0:32.25.0*255", name="Voltage L1", unit="V",
        kind="profile", profile_obis="1-0:99.1.0*255", scaler=-1,
    )  # fmt: skip
    volts = [Decimal("230.1"), Decimal("229.9"), Decimal("231.0"), Decimal("230.4")]
    rows = tuple(ProfileRow(T0 + QH * (i + 1), (v,)) for i, v in enumerate(volts))
    ingest_profiles(
        [(meter, ProfileBlock("1-0:99.1.0*255", (Col("1-0:32.25.0*255", "V"),), rows, 900))]
    )
    body = series(
        world.operator_a, meter, channels="1-0:32.25.0*255", start=T0.isoformat(),
        end=(T0 + timedelta(hours=1)).isoformat(), resolution="hour",
    ).json()  # fmt: skip
    ch = body["channels"][0]
    assert ch["aggregate"] == "mean"
    assert Decimal(ch["values"][0]) == sum(volts) / 4


def test_automatic_resolution_downsamples_long_ranges(world, meter):
    def used(days, requested="auto"):
        end = T0 + timedelta(days=days)
        return series(
            world.operator_a, meter, start=T0.isoformat(), end=end.isoformat(), resolution=requested
        ).json()["resolution"]

    assert used(7) == "raw"
    assert used(31) == "hour"
    assert used(200) == "day"
    assert used(2000) == "month"
    assert used(40, "raw") == "hour"  # raw over more than 35 days is answered hourly
    month = series(
        world.operator_a, meter, start=T0.isoformat(), end=(T0 + timedelta(days=31)).isoformat()
    ).json()
    assert len(month["channels"][0]["values"]) == DAYS * 24  # hours that have data


def test_series_validates_its_parameters(world, meter):
    assert series(world.operator_a, meter, resolution="weekly").status_code == 400
    assert series(world.operator_a, meter, start="2026-06-03", end="2026-06-01").status_code == 400
    assert series(world.operator_a, meter, channels="9-9:9.9.9*9").status_code == 400
    default = series(world.operator_a, meter, channels="").json()
    assert {c["obis"] for c in default["channels"]} == {IMPORT, EXPORT}


def test_register_history_last_reads_and_events(world, meter):
    ingest_reads(meter)
    stamps = ingest_some_events(meter, 25)
    CommStatus.objects.create(meter=meter, last_success=T0, consecutive_failures=0)
    client = page_client(world.operator_a)
    page = client.get(f"/meters/{meter.serial}/")
    context = page.context
    last = {r["channel"].obis: r for r in context["last_reads"]}
    assert last["1-0:1.8.0*255"]["read_at"] == T0 + timedelta(days=DAYS)
    assert len(context["register_history"]) == DAYS + 1
    events = context["events"]
    assert len(events) == 20 and events[0].ts == stamps[-1]  # newest first
    # Events by name and meaning, not "0-0:99.98.0*255 | 40".
    html = page.content.decode()
    for name in ("Terminal cover opened", "Terminal cover closed", "Strong magnetic field"):
        assert f"<strong>{name}</strong>" in html
    assert "Standard event log · code 40" in html
    assert "<td>0-0:99.98.0*255</td>" not in html
    assert (
        list(client.get(f"/meters/{meter.serial}/", {"events_page": 2}).context["events"])[-1].ts
        == stamps[0]
    )
    register = series(
        world.operator_a, meter, channels="1-0:1.8.0*255", start=T0.isoformat(),
        end=(T0 + timedelta(days=DAYS)).isoformat(), resolution="raw",
    ).json()["channels"][0]  # fmt: skip
    # A register read at T0 lies outside (T0, end]: the others are there, exact.
    assert len(register["values"]) == DAYS


def _instantaneous_result(world, meter, data):
    run = JobRun.objects.create(
        organisation=meter.organisation, kind=RunKind.ON_DEMAND, items=["instantaneous"],
        status=RunStatus.SUCCEEDED, total=1, done=1, succeeded=1,
    )  # fmt: skip
    return MeterReadResult.objects.create(
        run=run, meter=meter, status=ResultStatus.OK, data={"instantaneous": data}
    )


INSTANT = {
    "read_at": "2026-06-01T12:00:00+00:00",
    "voltages": ["230.1", "229.5", "231.0"],
    "currents": ["5.00", "2.50", "0.00"],
    "angles": ["30.0", "-10.0", "0.0"],
    "frequency": "50.01",
    "active_power": "1500",
}


def test_phasor_diagram_from_the_latest_instantaneous_read(world, meter):
    _instantaneous_result(world, meter, INSTANT)
    page = page_client(world.operator_a).get(f"/meters/{meter.serial}/")
    html = page.content.decode()
    assert 'id="phasor"' in html and "230.1" in html and "50.01" in html
    rows = page.context["phasor"]["phases"]
    assert [r["phase"] for r in rows] == ["L1", "L2", "L3"]
    assert rows[0]["u_xy"] == (pytest.approx(100 * 230.1 / 231.0, abs=0.01), 0)
    assert rows[0]["current_angle"] == -30.0  # lagging by 30 degrees
    assert rows[0]["power_factor"] == pytest.approx(0.866, abs=0.001)
    assert "i_xy" not in rows[2]  # no current on L3: no arrow
    # Other organisation: the run is not theirs and the page is 404 anyway.
    assert page_client(world.operator_b).get(f"/meters/{meter.serial}/").status_code == 404


def test_phasor_geometry():
    diagram = phasor_diagram(INSTANT)
    l2 = diagram["phases"][1]
    assert l2["voltage_angle"] == -120.0 and l2["current_angle"] == -110.0
    x, y = l2["u_xy"]
    assert x < 0 and y > 0  # -120 degrees: lower left (SVG y grows downwards)


def test_page_renders_without_the_alarms_app(world, meter, monkeypatch):
    import meters.detail_views as detail

    monkeypatch.setattr(detail, "alarms_module", lambda: None)
    html = page_client(world.operator_a).get(f"/meters/{meter.serial}/").content.decode()
    assert 'id="meter-alarms"' not in html
    monkeypatch.setattr(detail, "alarms_module", lambda: object())
    html = page_client(world.operator_a).get(f"/meters/{meter.serial}/").content.decode()
    assert 'id="meter-alarms"' in html
