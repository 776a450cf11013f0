"""A scheduled run reads a simulated fleet; the store holds exactly what the meters' model says.

The simulator's values are a pure function of (serial, quantity, time), so every interval
of every channel can be checked, and a second run must add nothing.
"""

from __future__ import annotations

import pytest
from django.db.models import Count

from accounts.models import Organisation
from collection import actions
from collection.models import JobRun, ReadJob
from collection.simulators import model as sim
from collection.simulators.dlms_fleet import Fault, make_meters
from meters.choices import ChannelKind, MeterStatus
from meters.models import Channel, Meter, MeterModel
from meters.store import EventRecord, IntervalReading, RegisterRead
from tests.collection.fleet import fleet_thread

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PROFILE = "1-0:99.1.0*255"
EVENT_LOG = "0-0:99.98.0*255"


@pytest.fixture
def eager_celery():
    from amisite.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def simulated_model(org) -> MeterModel:
    model = MeterModel.objects.create(manufacturer="Simulated", name="DLMS", organisation=org)
    for channel, (profile_obis, register_obis, unit) in sim.CHANNELS.items():
        Channel.objects.create(
            meter_model=model,
            obis=profile_obis,
            name=f"ch{channel}",
            unit=unit,
            kind=ChannelKind.PROFILE,
            profile_obis=PROFILE,
        )
        Channel.objects.create(
            meter_model=model,
            obis=register_obis,
            name=f"reg{channel}",
            unit=unit,
            kind=ChannelKind.REGISTER,
        )
    Channel.objects.create(
        meter_model=model,
        obis=EVENT_LOG,
        name="events",
        kind=ChannelKind.EVENT_LOG,
        profile_obis=EVENT_LOG,
    )
    return model


# The simulator's password client: commands need it (the public client may only read).
COMMANDER = {"security": "low", "password": "12345678", "dlms_client_address": 17}


def register_fleet(fleet, sims, org, model, **endpoint) -> list[Meter]:
    """A meter row per simulated meter; `endpoint`: more endpoint fields (e.g. security)."""
    meters = []
    for s in sims:
        address = fleet.address_of(s.serial)
        meters.append(
            Meter(
                serial=s.serial,
                meter_model=model,
                organisation=org,
                status=MeterStatus.ACTIVE,
                host=address.host,
                port=address.port,
                dlms_server_address=address.server_address,
                **({"timeout_s": 3, "retries": 0} | endpoint),
            )
        )
    Meter.objects.bulk_create(meters)
    return list(Meter.objects.filter(organisation=org).order_by("serial"))


def check_store_matches_model(meters: list[Meter], run: JobRun) -> int:
    """Every stored interval equals the model; every expected interval is there. Returns rows."""
    channels = {
        c.obis: c for c in Channel.objects.filter(meter_model=meters[0].meter_model, kind="profile")
    }
    columns = {n: channels[normalised(obis)] for n, obis in sim.PROFILE_OBIS.items()}
    # Intervals ending in (since, until]; interval k ends at interval_end(k).
    first_k = sim.completed_intervals(run.since)
    last_k = sim.completed_intervals(run.until) - 1
    checked = 0
    by_meter = {m.pk: m.serial for m in meters}
    rows = IntervalReading.objects.filter(
        meter_id__in=by_meter, ts__gt=run.since, ts__lte=run.until
    )
    stored = {(r.meter_id, r.group, r.ts): r for r in rows}
    for meter_id, serial in by_meter.items():
        for k in range(first_k, last_k + 1):
            ts = sim.interval_end(k)
            for n, channel in columns.items():
                row = stored.get((meter_id, channel.profile_group, ts))
                assert row is not None, f"{serial}: interval {ts} missing"
                value, flags = row.column(channel.profile_column)
                assert value == sim.interval_value(serial, n, k), (serial, ts, n)
                assert flags == 0, (serial, ts, n, flags)
                checked += 1
    return checked


def normalised(dotted: str) -> str:
    from meters.obis import normalise

    return normalise(dotted)


def test_scheduled_run_stores_exactly_the_model_and_a_second_run_adds_nothing(eager_celery):
    org = Organisation.objects.create(name="E2E", code="e2e")
    model = simulated_model(org)
    sims = make_meters(500)
    with fleet_thread(sims, interface="wrapper") as fleet:
        meters = register_fleet(fleet, sims, org, model)
        job = ReadJob.objects.create(
            name="daily",
            organisation=org,
            items=["clock", "registers", "profile", "events"],
            batch_size=100,
            concurrency=100,
            retries=0,
            backfill_days=0,  # a first read reads just the day (the horizon: test_read_windows)
        )
        run = JobRun.objects.get(pk=actions.start_run(job).pk)
        assert (run.status, run.total, run.succeeded, run.failed) == ("succeeded", 500, 500, 0)
        values = check_store_matches_model(meters, run)
        assert values == 500 * 96 * 4
        # Registers: as read at the meter's clock, equal to the model at that instant.
        reads = RegisterRead.objects.filter(meter_id=meters[0].pk, channel__obis="1-0:1.8.0*255")
        read = reads.get()
        assert read.value == sim.energy_register(meters[0].serial, 1, read.read_at)
        # Events: exactly the model's entries in the window.
        expected_events = sum(len(sim.events(m.serial, run.since, run.until)) for m in meters)
        assert EventRecord.objects.filter(meter__in=meters).count() == expected_events
        intervals_before = IntervalReading.objects.count()
        events_before = EventRecord.objects.count()

        second = JobRun.objects.get(pk=actions.start_run(job).pk)
    assert second.status == "succeeded"
    assert IntervalReading.objects.count() == intervals_before
    assert EventRecord.objects.count() == events_before
    dupes = (
        IntervalReading.objects.values("meter_id", "group", "ts")
        .annotate(n=Count("ts"))
        .filter(n__gt=1)
    )
    assert not dupes.exists()


def test_faulty_fifth_of_the_fleet_is_reported_and_nothing_wrong_is_stored(eager_celery):
    org = Organisation.objects.create(name="Faults", code="faults")
    model = simulated_model(org)
    sims = make_meters(100)
    kinds = ["timeout", "reset", "corrupt", "late"]
    for i, s in enumerate(sims[:20]):
        kind = kinds[i % len(kinds)]
        s.fault = Fault(kind, delay_s=5) if kind == "late" else Fault(kind)
    with fleet_thread(sims, interface="wrapper") as fleet:
        meters = register_fleet(fleet, sims, org, model)
        job = ReadJob.objects.create(
            name="daily",
            organisation=org,
            items=["clock", "registers", "profile", "events"],
            batch_size=50,
            concurrency=50,
            retries=1,
            retry_backoff_s=0,
            backfill_days=0,
        )
        run = JobRun.objects.get(pk=actions.start_run(job).pk)
    faulty = {s.serial for s in sims[:20]}
    results = {r.meter.serial: r for r in run.results.select_related("meter")}
    assert run.status == "partial" and run.succeeded + run.failed == 100
    for serial, result in results.items():
        if serial in faulty:
            assert result.status == "failed" and result.error_kind, serial
        else:
            assert result.status == "ok", (serial, result.error)
    # A failed session's frames are kept for the run page (the corrupted replies among them).
    corrupted = [results[s.serial] for s in sims[:20] if s.fault.kind == "corrupt"]
    assert all(" rx " in r.exchange_log for r in corrupted)
    healthy = [m for m in meters if m.serial not in faulty]
    assert check_store_matches_model(healthy, run) == 80 * 96 * 4
    failed_ids = [m.pk for m in meters if m.serial in faulty]
    # Nothing half-read from a failed session reached the store.
    assert not IntervalReading.objects.filter(meter_id__in=failed_ids).exists()
    assert not RegisterRead.objects.filter(meter_id__in=failed_ids).exists()
