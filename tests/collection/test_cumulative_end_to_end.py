"""Two simulated meters reporting the same energy, one with an interval load profile and one
with an IDIS-style cumulative profile (the registers 1.8.0 and 2.8.0 captured every 15 min),
are re-read for a month over loopback by the real collection pipeline (API -> run -> batch
task -> DLMS sessions -> ingest). Day and month energy must be identical and exact -- equal
to the simulator's closed-form model -- through the daily rollup, the series API (day and
month, and the date form of its range), the data query and the feeder sum, across the
October DST change of the utility's zone.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from collection.simulators import model as sim
from collection.simulators.dlms_fleet import SimulatedMeter
from meters.choices import ChannelKind
from meters.models import Channel, Meter, MeterModel
from meters.store import DailyEnergy, IntervalReading, query
from meters.store.days import day_bounds
from meters.store.rollups import feeder_daily_energy
from tests.collection.fleet import fleet_thread
from tests.collection.test_end_to_end import eager_celery  # noqa: F401

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.usefixtures("eager_celery"),
]

PROFILE = "1-0:99.1.0*255"
SERIAL = "90000007"  # the simulator's values are a function of this serial
OCTOBER = [date(2026, 10, 1) + timedelta(days=i) for i in range(31)]


def _model(org, name, profile_codes):
    model = MeterModel.objects.create(manufacturer="Sim", name=name, organisation=org)
    for code, unit in profile_codes:
        Channel.objects.create(
            meter_model=model, obis=code, name=code, unit=unit, kind=ChannelKind.PROFILE,
            profile_obis=PROFILE,
        )  # fmt: skip
    Channel.objects.create(
        meter_model=model, obis="1-0:1.8.0*255", name="+A", unit="Wh", kind=ChannelKind.REGISTER
    )
    return model


def _point(meter, fleet, serial, model):
    host, port, server_address = fleet.address_of(serial)
    meter = Meter.objects.get(pk=meter.pk)
    meter.meter_model = model
    meter.host, meter.port, meter.dlms_server_address = host, port, server_address
    meter.timeout_s, meter.retries = 10, 0
    meter.save()
    return Meter.objects.get(pk=meter.pk)


def _expected_day(day: date) -> int:
    """Import energy of a local day by the model: intervals ending in (midnight, midnight]."""
    lo, hi = day_bounds(day)
    return sim.cumulative(SERIAL, 1, sim.completed_intervals(hi)) - sim.cumulative(
        SERIAL, 1, sim.completed_intervals(lo)
    )


def test_interval_and_cumulative_profiles_give_the_same_exact_energy(world, settings):
    settings.TIME_ZONE = "Europe/London"
    depth = 96 * 100  # enough history for October from today
    interval_sim = SimulatedMeter(SERIAL, profile_entries=depth)
    cumulative_sim = SimulatedMeter(SERIAL, profile_entries=depth, profile_style="cumulative")
    interval_model = _model(
        world.org_a, "interval", [(sim.PROFILE_OBIS[c], sim.CHANNELS[c][2]) for c in (1, 2, 3, 4)]
    )
    cumulative_model = _model(
        world.org_a, "idis", [("1-0:1.8.0*255", "Wh"), ("1-0:2.8.0*255", "Wh")]
    )
    with (
        fleet_thread([interval_sim], per_meter_ports=True) as f_interval,
        fleet_thread([cumulative_sim], per_meter_ports=True) as f_cumulative,
    ):
        # One meter on each organisation's feeder, read through the real pipeline.
        a = _point(world.grid_a.meters[0], f_interval, SERIAL, interval_model)
        b = _point(world.grid_b.meters[0], f_cumulative, SERIAL, cumulative_model)
        api = APIClient()
        api.force_authenticate(world.superuser)
        answer = api.post(
            "/api/rereads/",
            {"meters": [a.pk, b.pk], "since": "2026-10-01", "until": "2026-10-31"},
            format="json",
        )
        assert answer.status_code == 202, answer.content
        run = answer.json()
    assert run["kind"] == "reread"
    detail = api.get(f"/api/runs/{run['id']}/").json()
    assert (detail["status"], detail["succeeded"]) == ("succeeded", 2), detail

    # The cumulative meter's raw captures are stored exactly as the meter gave them.
    cum = cumulative_model.channels.get(obis="1-0:1.8.0*255", kind=ChannelKind.PROFILE)
    lo, hi = day_bounds(OCTOBER[0])[0], day_bounds(OCTOBER[-1])[1]
    stored = IntervalReading.objects.filter(
        meter=b, group=cum.profile_group, ts__gte=lo, ts__lte=hi
    )
    assert stored.count() == 31 * 96 + 4 + 1  # Oct 25 has 100 quarter hours; plus the start
    for row in stored:
        n = sim.completed_intervals(row.ts)
        assert row.column(cum.profile_column)[0] == sim.cumulative(SERIAL, 1, n)

    # Daily rollup: both meters, every local day, exact.
    imp = interval_model.channels.get(obis="1-0:1.29.0*255")
    for day in OCTOBER:
        want = _expected_day(day)
        got_a = DailyEnergy.objects.get(meter=a, channel=imp, day=day)
        got_b = DailyEnergy.objects.get(meter=b, channel=cum, day=day)
        intervals = 100 if day == date(2026, 10, 25) else 96
        assert (got_a.value, got_a.intervals) == (got_b.value, got_b.intervals) == (want, intervals)
    month = sum(_expected_day(d) for d in OCTOBER)

    # Series API: the date form (local midnights) at day and month resolution.
    for meter in (a, b):
        for resolution, expect in (
            ("day", [Decimal(_expected_day(d)) for d in OCTOBER]),
            ("month", [Decimal(month)]),
        ):
            body = api.get(
                f"/api/meters/{meter.pk}/series/",
                {
                    "channels": "profile:1-0:1.29.0*255",
                    "start": "2026-10-01",
                    "end": "2026-10-31",
                    "resolution": resolution,
                },
            ).json()
            (channel,) = body["channels"]
            assert [Decimal(v) for v in channel["values"]] == expect, (meter.serial, resolution)
        assert body["start"] == "2026-09-30T23:00:00+00:00"  # local midnight, BST

    # The data query (and so its exports): the same month for both.
    q = query.DataQuery(
        Meter.objects.filter(pk__in=[a.pk, b.pk]), ["profile:1-0:1.29.0*255"], lo, hi, "month"
    )
    assert sorted((r.serial, r.value) for r in q.rows()) == sorted(
        [(a.serial, Decimal(month)), (b.serial, Decimal(month))]
    )

    # Feeder sums: each feeder holds one of the two meters; day by day the same, exact.
    sums = feeder_daily_energy("1-0:1.29.0*255", OCTOBER[0], OCTOBER[-1])
    fa, fb = world.grid_a.feeder.pk, world.grid_b.feeder.pk
    for day in OCTOBER:
        assert sums[(fa, day)] == sums[(fb, day)] == Decimal(_expected_day(day))
