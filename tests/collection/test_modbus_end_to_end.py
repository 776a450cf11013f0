"""A scheduled run reads Modbus meters through the normal job path (targets from the registry,
the Modbus driver, the store): the stored registers are exactly what the simulator held."""

from __future__ import annotations

import pytest

from accounts.models import Organisation
from collection import actions
from collection.models import JobRun, ReadJob
from collection.simulators import model as sim
from collection.simulators.modbus import values
from collection.simulators.modbus.server import Fault, ModbusFleet, make_meters
from meters.choices import ChannelKind, MeterStatus, Protocol
from meters.models import Channel, Meter, MeterModel
from meters.obis import dotted
from meters.store import RegisterRead
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
        Meter.objects.bulk_create(
            Meter(
                serial=s.serial,
                meter_model=models[s.register_map.name],
                organisation=org,
                status=MeterStatus.ACTIVE,
                protocol=Protocol.MODBUS,
                host=fleet.host,
                port=fleet.port,
                modbus_unit_id=s.unit_id,
                timeout_s=1,
                retries=0,
            )
            for s in sims
        )
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
