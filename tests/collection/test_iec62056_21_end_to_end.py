"""A scheduled run reads IEC 62056-21 meters through the normal job path (targets from the
registry, the IEC 62056-21 driver, the store): the stored registers are exactly the model's,
a drifted meter's clock is set in programming mode with its P1 password (from the registry,
encrypted at rest), a silent meter fails alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from accounts.models import Organisation
from amisite.celery import app
from collection import actions
from collection.models import JobRun, ReadJob
from collection.protocols.dlms.cosem import ENERGY_REGISTERS
from collection.simulators import model as sim_model
from collection.simulators.iec62056_21 import values
from collection.simulators.iec62056_21.server import Fault, Iec21Fleet, make_meters
from meters.choices import ChannelKind, MeterStatus, Protocol
from meters.models import Channel, CommStatus, Meter, MeterModel
from meters.obis import normalise
from meters.store import EventRecord, IntervalReading, RegisterRead
from tests.collection.fleet import away_from_a_quarter_hour, fleet_thread
from tests.collection.test_end_to_end import simulated_model

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

REGISTERS = ENERGY_REGISTERS  # 1.8.0, 2.8.0, 3.8.0, 4.8.0 and the tariffs 1.8.1, 1.8.2
PASSWORD = "p1-secret"


@pytest.fixture
def eager_celery():
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def register(sims, fleet, meter_model, org, passwords, timeout_s=2) -> list[Meter]:
    """A meter row per simulated meter, reached through the fleet's listener."""
    return [
        Meter.objects.create(
            serial=s.serial,
            meter_model=meter_model,
            organisation=org,
            status=MeterStatus.ACTIVE,
            protocol=Protocol.IEC62056_21,
            host=fleet.host,
            port=fleet.port,
            iec21_address=s.address,
            password=passwords.get(s.serial, ""),
            timeout_s=timeout_s,
            retries=0,
        )
        for s in sims
    ]


def test_iec21_meters_are_read_by_a_job_and_stored_exactly(eager_celery):
    org = Organisation.objects.create(name="IEC 62056-21", code="iec21")
    meter_model = MeterModel.objects.create(
        manufacturer="Simulated", name="SIM21", protocol=Protocol.IEC62056_21, organisation=org
    )
    for obis in REGISTERS:
        Channel.objects.create(
            meter_model=meter_model,
            obis=obis,
            name=obis,
            unit="varh" if obis[4] in "34" else "Wh",
            kind=ChannelKind.REGISTER,
        )
    sims = make_meters(5, password=PASSWORD)
    sims[1].clock_offset_s = -120  # drifted: the job sets it (programming mode, P1, W1)
    sims[3].fault = Fault("timeout")
    sims[4].clock_offset_s = -40  # drifted, and no password registered: read, not set
    passwords = {s.serial: PASSWORD for s in sims[:4]}
    away_from_a_quarter_hour()
    with fleet_thread(sims, fleet_class=Iec21Fleet) as fleet:
        register(sims, fleet, meter_model, org, passwords, timeout_s=1)
        job = ReadJob.objects.create(
            name="iec21 registers",
            organisation=org,
            # What IEC 62056-21 lacks here (profile, events, relay) is left out, not failed.
            items=["clock", "registers", "profile", "events", "relay"],
            batch_size=50,
            concurrency=50,
            retries=0,
            retry_backoff_s=0,
            sync_clock=True,
            clock_drift_limit_s=30,
        )
        run = JobRun.objects.get(pk=actions.start_run(job).pk)
    assert (run.status, run.total, run.succeeded, run.failed) == ("partial", 5, 4, 1)
    results = {r.meter.serial: r for r in run.results.select_related("meter")}
    faulty = sims[3].serial
    assert results[faulty].status == "failed" and results[faulty].error_kind == "MeterTimeout"
    assert not RegisterRead.objects.filter(meter__serial=faulty).exists()
    # The drifted meter's clock was set back to true time (within the second of the read).
    assert abs(sims[1].clock_offset_s) <= 2
    assert sims[4].clock_offset_s == -40
    assert CommStatus.objects.filter(meter__serial=sims[0].serial).exists()
    # The password is stored encrypted, never in clear.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT e.password FROM meters_meterendpoint e JOIN meters_meter m ON m.id = e.meter_id"
            " WHERE m.serial = %s",
            [sims[0].serial],
        )
        assert PASSWORD not in cursor.fetchone()[0]
    checked = 0
    for s in (*sims[:3], sims[4]):
        reads = {
            r.channel.obis: r
            for r in RegisterRead.objects.filter(meter__serial=s.serial).select_related("channel")
        }
        assert set(reads) == set(REGISTERS), s.serial
        for obis, read in reads.items():
            # Stamped with the meter's clock; the values are those of the true time.
            true_time = read.read_at - timedelta(seconds=s.clock_offset_s)
            assert read.value == values.expected(s.serial, true_time)[obis], obis
            checked += 1
    assert checked == 4 * len(REGISTERS)


def test_iec21_profile_and_events_are_stored_through_the_same_store_as_dlms(eager_celery):
    """P.01 and P.98 (R5 in programming mode, the generic plug-in) through a job into the
    interval and event store: every interval of every channel equals the model, events too,
    a second run adds nothing; a mode A meter gives its registers and fails nothing."""
    org = Organisation.objects.create(name="IEC 62056-21 profile", code="iec21p")
    meter_model = simulated_model(org)  # the DLMS end-to-end test's channels, unchanged
    columns = {
        n: meter_model.channels.get(obis=normalise(profile_obis), kind=ChannelKind.PROFILE)
        for n, (profile_obis, _register, _unit) in sim_model.CHANNELS.items()
    }
    sims = make_meters(4, password=PASSWORD)
    sims[2].block_size = 256  # the R5 answers in partial blocks
    sims[3].mode = "A"  # no programming mode: registers only, not a failure
    away_from_a_quarter_hour()
    with fleet_thread(sims, fleet_class=Iec21Fleet) as fleet:
        meters = register(sims, fleet, meter_model, org, {s.serial: PASSWORD for s in sims})
        job = ReadJob.objects.create(
            name="iec21 profile",
            organisation=org,
            items=["clock", "registers", "profile", "events"],
            batch_size=50,
            concurrency=50,
            retries=0,
            retry_backoff_s=0,
            backfill_days=0,
        )
        run = JobRun.objects.get(pk=actions.start_run(job).pk)
        assert (run.status, run.total, run.succeeded, run.failed) == ("succeeded", 4, 4, 0), [
            (r.meter.serial, r.error) for r in run.results.select_related("meter")
        ]
        first_k = sim_model.completed_intervals(run.since)
        last_k = sim_model.completed_intervals(run.until) - 1
        checked = 0
        for meter, s in zip(meters[:3], sims[:3], strict=True):
            stored = {
                (r.group, r.ts): r
                for r in IntervalReading.objects.filter(
                    meter=meter, ts__gt=run.since, ts__lte=run.until
                )
            }
            for k in range(first_k, last_k + 1):
                ts = sim_model.interval_end(k)
                for n, channel in columns.items():
                    value, flags = stored[(channel.profile_group, ts)].column(
                        channel.profile_column
                    )
                    assert (value, flags) == (sim_model.interval_value(s.serial, n, k), 0)
                    checked += 1
            events = set(EventRecord.objects.filter(meter=meter).values_list("ts", "code"))
            assert events == set(sim_model.events(s.serial, run.since, run.until))
        assert checked == 3 * 96 * 4
        # The mode A meter: registers from its readout, nothing of a profile.
        assert RegisterRead.objects.filter(meter=meters[3]).count() == len(sim_model.CHANNELS)
        assert not IntervalReading.objects.filter(meter=meters[3]).exists()
        before = (IntervalReading.objects.count(), EventRecord.objects.count())
        run2 = JobRun.objects.get(pk=actions.start_run(job).pk)
        assert run2.status == "succeeded"
        assert (IntervalReading.objects.count(), EventRecord.objects.count()) == before
