"""A scheduled run reads Modbus meters through the normal job path (targets from the registry,
the Modbus driver, the store): the stored registers are exactly what the simulator held."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Organisation, User
from collection import actions
from collection.models import JobRun, ReadJob
from collection.protocols.modbus.session import HEAD_END_PROFILE
from collection.simulators import model as sim
from collection.simulators.modbus import values
from collection.simulators.modbus.server import Fault, ModbusFleet, make_meters
from meters.choices import ChannelKind, MeterStatus, Protocol
from meters.models import Channel, Meter, MeterModel
from meters.obis import dotted, normalise
from meters.store import IntervalReading, Quality, RegisterRead, query
from reports import billing
from tests.collection.fleet import away_from_a_quarter_hour, fleet_thread

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ENERGY = ("1-0:1.8.0*255", "1-0:2.8.0*255", "1-0:3.8.0*255", "1-0:4.8.0*255")


@pytest.fixture
def eager_celery():
    from amisite.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def modbus_model(org, manufacturer, name) -> MeterModel:
    meter_model = MeterModel.objects.create(
        manufacturer=manufacturer, name=name, protocol=Protocol.MODBUS, organisation=org
    )
    for obis in ENERGY:
        Channel.objects.create(
            meter_model=meter_model,
            obis=obis,
            name=obis,
            unit="varh" if obis[4] in "34" else "Wh",
            kind=ChannelKind.REGISTER,
        )
    return meter_model


def register(sims, fleet, org, model_of, timeout_s=2) -> list[Meter]:
    """A meter row per simulated unit, reached through the fleet's listener."""
    return Meter.objects.bulk_create(
        Meter(
            serial=s.serial,
            meter_model=model_of(s),
            organisation=org,
            status=MeterStatus.ACTIVE,
            protocol=Protocol.MODBUS,
            host=fleet.host,
            port=fleet.port,
            modbus_unit_id=s.unit_id,
            timeout_s=timeout_s,
            retries=0,
        )
        for s in sims
    )


def test_modbus_meters_are_read_by_a_job_and_stored_exactly(eager_celery):
    org = Organisation.objects.create(name="Modbus", code="modbus")
    models = {
        "pm5500": modbus_model(org, "Schneider Electric", "PM5560"),
        "sdm630": modbus_model(org, "Eastron", "SDM630"),
    }
    sims = make_meters(3, "pm5500") + make_meters(3, "sdm630", first_serial=71000001, first_unit=4)
    sims.append(make_meters(1, "sdm630", first_serial=72000001, first_unit=7)[0])
    sims[-1].fault = Fault("timeout")
    away_from_a_quarter_hour()
    with fleet_thread(sims, fleet_class=ModbusFleet) as fleet:
        register(sims, fleet, org, lambda s: models[s.register_map.name], timeout_s=1)
        job = ReadJob.objects.create(
            name="modbus registers",
            organisation=org,
            # A mixed fleet's job: what a Modbus meter lacks (clock, profile, events, relay)
            # is left out of its read, not failed.
            items=["clock", "registers", "profile", "events", "instantaneous", "relay"],
            batch_size=50,
            concurrency=50,
            retries=0,
            retry_backoff_s=0,
        )
        run = JobRun.objects.get(pk=actions.start_run(job).pk)
        # Seven meters, one gateway connection (opened once more after the silent unit's
        # timeout, when that was not the last request).
        assert fleet.connections <= 2
    assert (run.status, run.total, run.succeeded, run.failed) == ("partial", 7, 6, 1)
    results = {r.meter.serial: r for r in run.results.select_related("meter")}
    faulty = sims[-1].serial
    assert results[faulty].status == "failed" and results[faulty].error_kind == "MeterTimeout"
    assert not RegisterRead.objects.filter(meter__serial=faulty).exists()
    checked = 0
    for s in sims[:-1]:
        by_obis = s.register_map.by_obis()
        reads = {
            r.channel.obis: r
            for r in RegisterRead.objects.filter(meter__serial=s.serial).select_related("channel")
        }
        assert set(reads) == set(ENERGY), s.serial
        for obis, read in reads.items():
            assert read.value == values.expected(s.serial, by_obis[obis], read.read_at), obis
            if s.register_map.name == "pm5500":  # INT64 Wh registers: the model itself
                channel = {v[1]: c for c, v in sim.CHANNELS.items()}[dotted(obis)]
                assert read.value == sim.energy_register(s.serial, channel, read.read_at)
            checked += 1
    assert checked == 6 * 4


def test_a_head_end_profile_is_polled_into_intervals_and_said_so_everywhere(eager_celery):
    """Meters without memory: the job's poll of the energy registers is stored as a capture of
    a cumulative profile at the run's boundary, exactly the model's; the boundaries no poll
    reached are MISSING; late polls are CLOCK_SUSPECT; a second run adds nothing. The
    channels are head-end derived, and the series API (graph legend), the data query (table
    and exports) and the billing summary say so."""
    org = Organisation.objects.create(name="Head-end", code="headend")
    meter_model = modbus_model(org, "Schneider Electric", "PM5560")
    for obis in ENERGY:  # the same registers as a head-end profile (cumulative captures)
        Channel.objects.create(
            meter_model=meter_model,
            obis=obis,
            name=f"{obis} polled",
            unit="varh" if obis[4] in "34" else "Wh",
            kind=ChannelKind.PROFILE,
            profile_obis=HEAD_END_PROFILE,
        )
    profiles = list(Channel.objects.filter(meter_model=meter_model, kind=ChannelKind.PROFILE))
    assert all(ch.head_end_derived for ch in profiles)  # set by itself for a Modbus model
    assert not Channel.objects.filter(meter_model=meter_model, head_end_derived=True).exclude(
        kind=ChannelKind.PROFILE
    )
    sims = make_meters(2, "pm5500")  # INT64 Wh registers: the model's integers
    away_from_a_quarter_hour()
    with fleet_thread(sims, fleet_class=ModbusFleet) as fleet:
        meters = register(sims, fleet, org, lambda s: meter_model)
        job = ReadJob.objects.create(
            name="head-end profile",
            organisation=org,
            items=["registers", "profile"],
            batch_size=50,
            concurrency=10,
            retries=0,
            retry_backoff_s=0,
            backfill_days=0,
        )
        run = JobRun.objects.get(pk=actions.start_run(job).pk)
        assert (run.status, run.succeeded) == ("succeeded", 2)
        rows_before = IntervalReading.objects.count()
        run2 = JobRun.objects.get(pk=actions.start_run(job).pk)
        assert run2.status == "succeeded"
        assert IntervalReading.objects.count() == rows_before  # nothing new, nothing twice
    late = (run.started_at - run.until).total_seconds()
    columns = {ch.obis: ch for ch in profiles}
    for meter, s in zip(meters, sims, strict=True):
        rows = {
            r.ts: r
            for r in IntervalReading.objects.filter(meter=meter, group=profiles[0].profile_group)
        }
        capture = rows.pop(run.until)
        for obis, channel_no in ((o, n) for n, (_p, o, _u) in sim.CHANNELS.items()):
            value, flags = capture.column(columns[normalise(obis)].profile_column)
            n = sim.completed_intervals(run.until)
            assert value == sim.cumulative(s.serial, channel_no, n), obis
            if late > 75:
                assert flags == Quality.CLOCK_SUSPECT
            elif late < 45:
                assert flags == 0
        # The boundaries of the run's window no poll reached: rows without values, MISSING.
        assert len(rows) == 95 and min(rows) == run.since + timedelta(minutes=15)
        for row in rows.values():
            for ch in profiles:
                assert row.column(ch.profile_column) == (None, Quality.MISSING)
    # Surfaced: the series API (the graph's legend), the data query and its exports, billing.
    api = APIClient()
    api.force_authenticate(User.objects.create_superuser("root", "root@example.invalid", "pw"))
    body = api.get(
        f"/api/meters/{meters[0].pk}/series/",
        {
            "channels": "profile:1-0:1.8.0*255,register:1-0:1.8.0*255",
            "start": (run.until - timedelta(hours=1)).isoformat(),
            "end": run.until.isoformat(),
        },
    ).json()
    assert [c["head_end_derived"] for c in body["channels"]] == [True, False]
    data = query.DataQuery(
        Meter.objects.filter(pk=meters[0].pk),
        ["profile:1-0:1.8.0*255"],
        run.until - timedelta(hours=1),
        run.until,
        "raw",
    )
    assert all("head_end" in row.quality.split(",") for row in data.rows())
    first_day = timezone.localtime(run.until).date()
    period = billing.Period(first_day, first_day)
    [result] = billing.determinants(Meter.objects.filter(pk=meters[0].pk), period)
    energy_rows = [r for r in result.rows if r["obis"] == "1-0:1.8.0*255"]
    assert energy_rows and "head-end derived profile" in energy_rows[0]["flags"]
