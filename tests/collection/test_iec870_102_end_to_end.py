"""A scheduled run reads IEC 870-5-102 meters through the normal job path (targets from the
registry with the password from the meter's encrypted column, the driver, the store): the
stored hourly intervals and energy registers are exactly the value model's, a period the
meter marked invalid is stored as such, and a wrong password fails only its meter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import Organisation
from collection import actions
from collection.models import JobRun, ReadJob
from collection.protocols.iec870_102 import codec as c
from collection.simulators import model as sim
from collection.simulators.iec870_102 import server
from collection.simulators.iec870_102.server import Iec102Fleet, make_meters
from meters.choices import ChannelKind, MeterStatus, Protocol
from meters.models import Channel, Meter, MeterModel
from meters.store import EventRecord, IntervalReading, Quality, RegisterRead
from tests.collection.fleet import fleet_thread
from tests.factories import make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PROFILE = "1-0:99.1.0*255"
# profile channel OBIS -> model channel (AI = +A, AE = -A, R1 = +R, R4 = -R)
PROFILE_CHANNELS = {"1-0:1.29.0*255": 1, "1-0:2.29.0*255": 2, "1-0:5.29.0*255": 3}
PROFILE_CHANNELS["1-0:8.29.0*255"] = 4
REGISTERS = {"1-0:1.8.0*255": 1, "1-0:2.8.0*255": 2}
PASSWORD = 20260
EVENT_LOG = "0-0:99.98.0*255"


def iec102_model(org) -> MeterModel:
    meter_model = MeterModel.objects.create(
        manufacturer="ZIV", name="5CTM", protocol=Protocol.IEC870_102, organisation=org
    )
    for obis in PROFILE_CHANNELS:
        Channel.objects.create(
            meter_model=meter_model,
            obis=obis,
            name=obis,
            unit="Wh" if obis[4] in "12" else "varh",
            kind=ChannelKind.PROFILE,
            profile_obis=PROFILE,
        )
    for obis in REGISTERS:
        Channel.objects.create(
            meter_model=meter_model, obis=obis, name=obis, unit="Wh", kind=ChannelKind.REGISTER
        )
    Channel.objects.create(  # record 52: supply events
        meter_model=meter_model,
        obis=EVENT_LOG,
        name="supply events",
        kind=ChannelKind.EVENT_LOG,
        profile_obis=EVENT_LOG,
    )
    return meter_model


def test_iec102_meters_are_read_by_a_job_and_stored_exactly(eager_celery):
    org = Organisation.objects.create(name="REE", code="ree")
    meter_model = iec102_model(org)
    sims = make_meters(3, password=PASSWORD)
    sims[2].password = PASSWORD + 1  # the head-end has the wrong one for this meter
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    invalid_at = hour - timedelta(hours=3)
    sims[0].quality = {invalid_at: c.Q_INVALID}
    with fleet_thread(sims, fleet_class=Iec102Fleet) as fleet:
        Meter.objects.bulk_create(
            Meter(
                serial=s.serial,
                meter_model=meter_model,
                organisation=org,
                status=MeterStatus.ACTIVE,
                protocol=Protocol.IEC870_102,
                host=fleet.host,
                port=fleet.port,
                iec102_link_address=s.link_address,
                iec102_measuring_point=s.measuring_point,
                password=str(PASSWORD),
                timeout_s=2,
                retries=0,
            )
            for s in sims
        )
        job = ReadJob.objects.create(
            name="ree hourly",
            organisation=org,
            items=["clock", "registers", "profile", "events"],
            batch_size=50,
            concurrency=10,
            retries=0,
            retry_backoff_s=0,
        )
        run = JobRun.objects.get(pk=actions.start_run(job).pk)
    assert (run.status, run.total, run.succeeded, run.failed) == ("partial", 3, 2, 1)
    results = {r.meter.serial: r for r in run.results.select_related("meter")}
    assert results[sims[2].serial].error_kind == "AuthenticationFailed"
    channels = {
        ch.obis: ch for ch in Channel.objects.filter(meter_model=meter_model, kind="profile")
    }
    checked = 0
    for s in sims[:2]:
        meter = Meter.objects.get(serial=s.serial)
        stored = {
            (r.group, r.ts): r
            for r in IntervalReading.objects.filter(
                meter_id=meter.pk, ts__gt=run.since, ts__lte=run.until
            )
        }
        end = run.since.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        while end <= run.until:
            for obis, channel_no in PROFILE_CHANNELS.items():
                channel = channels[obis]
                row = stored.get((channel.profile_group, end))
                assert row is not None, (s.serial, end)
                value, flags = row.column(channel.profile_column)
                if s is sims[0] and end == invalid_at:
                    assert value is None and flags & Quality.INVALID
                else:
                    n = sim.completed_intervals(end)
                    expected = sim.cumulative(s.serial, channel_no, n) - sim.cumulative(
                        s.serial, channel_no, n - 4
                    )
                    assert (value, flags) == (expected, 0), (s.serial, end, obis)
                checked += 1
            end += timedelta(hours=1)
        reads = RegisterRead.objects.filter(meter_id=meter.pk).select_related("channel")
        assert {r.channel.obis for r in reads} == set(REGISTERS)
        for read in reads:
            assert read.capture_time.minute == 0
            assert read.value == sim.energy_register(
                s.serial, REGISTERS[read.channel.obis], read.capture_time
            )
    assert checked >= 2 * 23 * 4
    # Events (M_SP_TA_2 of record 52) through the same event store as DLMS: exactly the
    # simulator's supply events of the run's window, none of the failed meter.
    for s in sims[:2]:
        stored = set(
            EventRecord.objects.filter(meter__serial=s.serial).values_list("ts", "code", "log")
        )
        expected = {
            (p.at, p.address << 8 | p.number, EVENT_LOG)
            for p in server.points(s.serial, 52, run.since, run.until)
        }
        assert stored == expected
    assert not EventRecord.objects.filter(meter__serial=sims[2].serial).exists()


def test_billing_closures_are_stored_as_register_reads_at_their_closure_time(eager_celery):
    """The monthly billing closures (C_TA_VM_2, the billing profile 0-0:98.1.0) give the
    meter's registers as it closed them at the month's end (Madrid midnight): stored as
    register reads at that time, the total and each tariff, exactly the model's; a second
    read of the same closures stores nothing more."""
    org = Organisation.objects.create(name="REE closures", code="reec")
    meter_model = iec102_model(org)
    for obis in ("1-0:1.8.1*255", "1-0:1.8.2*255"):
        Channel.objects.create(
            meter_model=meter_model, obis=obis, name=obis, unit="Wh", kind=ChannelKind.REGISTER
        )
    Channel.objects.create(
        meter_model=meter_model, obis="1-0:1.8.0*255", name="closure +A", unit="Wh",
        kind=ChannelKind.PROFILE, profile_obis="0-0:98.1.0*255",
    )  # fmt: skip
    user = make_user("ree-op", org, "operator")
    (simulated,) = make_meters(1, password=PASSWORD)
    now = datetime.now(UTC)
    local = now.astimezone(server.ZONE)
    closed_at = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    with fleet_thread([simulated], fleet_class=Iec102Fleet) as fleet:
        meter = Meter.objects.create(
            serial=simulated.serial, meter_model=meter_model, organisation=org,
            status=MeterStatus.ACTIVE, protocol=Protocol.IEC870_102, host=fleet.host,
            port=fleet.port, iec102_link_address=simulated.link_address,
            iec102_measuring_point=simulated.measuring_point, password=str(PASSWORD),
            timeout_s=2, retries=0,
        )  # fmt: skip
        for _ in range(2):
            run = actions.request_on_demand_read(
                meter, ["profile"], acting_user=user,
                since=closed_at - timedelta(days=1), until=min(now, closed_at + timedelta(days=1)),
            )  # fmt: skip
            assert JobRun.objects.get(pk=run.pk).succeeded == 1
    reads = {
        r.channel.obis: r.value
        for r in RegisterRead.objects.filter(meter=meter, read_at=closed_at).select_related(
            "channel"
        )
    }
    k = sim.completed_intervals(closed_at)
    assert reads == {
        "1-0:1.8.0*255": sim.cumulative(simulated.serial, 1, k),
        "1-0:1.8.1*255": sim.tariff_register(simulated.serial, 1, closed_at),
        "1-0:1.8.2*255": sim.tariff_register(simulated.serial, 2, closed_at),
    }
    assert RegisterRead.objects.filter(meter=meter).count() == 3  # the second read: nothing
