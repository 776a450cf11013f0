"""A data concentrator's own collected data (issue 14, concentrators part b), against the DLMS
gateway simulator over loopback: the meter list and the probe (its status, the meters it
reports reconciled with the registry), one meter's data read from the concentrator's own
logical device on its channel, stored through the same path as a read through the gateway,
so a meter read both ways never gets a reading twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import Organisation
from amisite.celery import app
from collection import actions, concentrators
from collection.models import JobRun, ReadJob
from collection.protocols import base, registry
from collection.protocols.driver import Endpoint
from collection.protocols.errors import UnknownDevice
from collection.reader import default_window
from collection.simulators import model as sim
from collection.simulators.dlms_fleet import DlmsFleet, make_meters
from collection.simulators.dlms_gateway import DlmsGateway
from meters.alarms.events import EventKind
from meters.alarms.models import OPEN_STATES, Alarm, AlarmRule
from meters.choices import MeterStatus, Transport
from meters.models import CommLine, CommStatus, DataConcentrator, Meter, ReportedMeter
from meters.store import EventRecord, IntervalReading, RegisterRead
from tests.collection.fleet import away_from_a_quarter_hour, fleet_thread
from tests.collection.test_end_to_end import check_store_matches_model, simulated_model
from tests.factories import make_user

PROFILE = "1-0:99.1.0*255"
EVENTS = "0-0:99.98.0*255"


def _session(gateway, **options):
    port = (
        gateway.listeners[0][1]
        if isinstance(gateway, DlmsFleet) and not isinstance(gateway, DlmsGateway)
        else gateway.own_address.port
    )
    endpoint = Endpoint(
        protocol="dlms",
        url=f"tcp://{gateway.host}:{port}",
        timeout_s=2,
        options=options,
    )
    return registry.open_session(registry.settings_for(endpoint))


def test_a_meters_copy_at_the_concentrator_is_what_the_meter_itself_says():
    """The copy (own logical device, the meter's channel) gives the meter's own profile and
    events up to the collection time, its registers as of then; the channel is found by
    serial whatever the hint; a meter the concentrator does not report is a typed error."""
    meters = make_meters(3)
    until = datetime.now(UTC).replace(second=0, microsecond=0)
    since = until - timedelta(hours=3)

    async def main():
        async with DlmsGateway(meters, serial="DC-COPY", collect_period_s=3600) as gateway:
            async with _session(gateway) as dc:
                listed = await dc.read_devices()
            wanted = meters[1].serial
            # A wrong hint (channel 1 holds another meter): the list is asked, channel 2 used.
            async with _session(gateway, dc_serial=wanted, dc_channel=1) as copy:
                found = (copy.channel, copy.as_of, copy.capabilities)
                registers = await copy.read_registers(["1-0:1.8.0*255", "1-0:1.6.0*255"])
                block = await copy.read_load_profile(PROFILE, since, until)
                events = await copy.read_events(EVENTS, since - timedelta(days=60), until)
            wport = gateway.address_of(wanted).server_address
            async with _session(gateway, server_address=wport) as meter:
                own = await meter.read_load_profile(PROFILE, since, until)
                own_events = await meter.read_events(EVENTS, since - timedelta(days=60), until)
            gateway.forget(meters[2].serial)
            errors = []
            for serial, hint in ((meters[2].serial, 3), ("NOT-THERE", None)):
                try:
                    async with _session(gateway, dc_serial=serial, dc_channel=hint):
                        pass
                except UnknownDevice as exc:
                    errors.append(str(exc))
            return listed, found, registers, block, events, own, own_events, errors

    listed, found, registers, block, events, own, own_events, errors = asyncio.run(main())
    hour = datetime.fromtimestamp(int(until.timestamp()) // 3600 * 3600, UTC)
    assert [(d.serial, d.channel) for d in listed] == [
        (m.serial, i + 1) for i, m in enumerate(meters)
    ]
    assert all(d.last_contact == hour for d in listed)
    channel, as_of, capabilities = found
    assert (channel, as_of) == (2, hour)
    assert capabilities == {base.READ_REGISTERS, base.READ_LOAD_PROFILE, base.READ_EVENTS}
    energy, demand = registers
    assert energy.obis == "1-0:1.8.0*255" and energy.capture_time is None
    assert energy.value == sim.energy_register(meters[1].serial, 1, hour)  # as of the copy
    assert demand.capture_time is not None  # a maximum demand keeps its own time
    # The meter's own codes, its own rows up to the collection time, not one more.
    assert block.profile == PROFILE and block.channels == own.channels
    assert block.rows == tuple(r for r in own.rows if r.timestamp <= hour)
    assert block.rows and block.rows[-1].timestamp == hour
    assert events == [e for e in own_events if e.timestamp <= hour]
    assert all(e.log == EVENTS for e in events)
    assert len(errors) == 2 and "does not report" in errors[0]


def test_a_fleet_serves_a_concentrators_own_data_beside_its_meters():
    """The demo's simulator: one listener, its meters at their addresses and a concentrator's
    own logical device at another wPort holding some of them (simulate_meters
    --concentrator)."""
    meters = make_meters(4)
    until = datetime.now(UTC).replace(second=0, microsecond=0)
    since = until - timedelta(hours=2)

    async def main():
        async with DlmsFleet(meters) as fleet:
            fleet.add_concentrator(1001, "DC-FLEET", [2, 4])
            async with _session(fleet, server_address=1001) as dc:
                listed = await dc.read_devices()
            async with _session(fleet, server_address=1001, dc_serial=meters[3].serial) as copy:
                block = await copy.read_load_profile(PROFILE, since, until)
            async with _session(fleet, server_address=4) as meter:
                own = await meter.read_load_profile(PROFILE, since, until)
            return listed, copy.channel, block, own

    listed, channel, block, own = asyncio.run(main())
    assert [(d.serial, d.channel) for d in listed] == [(meters[1].serial, 1), (meters[3].serial, 2)]
    assert channel == 2
    assert block.rows and block.rows == tuple(
        r for r in own.rows if r.timestamp <= block.rows[-1].timestamp
    )


@pytest.fixture
def eager_celery():
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def _fleet(org, gateway, registered):
    model = simulated_model(org)
    dc = DataConcentrator.objects.create(
        serial="DC-OWN", name="Own data", organisation=org, host=gateway.host,
        port=gateway.own_address.port, timeout_s=2, retries=0,
    )  # fmt: skip
    for s in registered:
        Meter.objects.create(
            serial=s.serial, meter_model=model, organisation=org, status=MeterStatus.ACTIVE,
            transport=Transport.CONCENTRATOR, concentrator=dc, timeout_s=2, retries=0,
            dlms_server_address=gateway.address_of(s.serial).server_address,
        )  # fmt: skip
    return dc, list(Meter.objects.filter(organisation=org).order_by("serial"))


def _serials_with_an_event_today() -> int:
    """The first serial of three simulated meters with an event-log entry in the window a run
    started now reads (the last day, `reader.default_window`). The simulator gives a meter an
    incident on a quarter of its days, so with fixed serials three meters had none in the
    window on some days of the year, and the test failed all that day (2026-12-06)."""
    since, until = default_window(datetime.now(UTC))
    inside = (since + timedelta(minutes=5), until - timedelta(minutes=5))
    for first in range(90000001, 90100001, 10):
        if any(sim.events(str(first + i), *inside) for i in range(3)):
            return first
    raise AssertionError("no simulated meters with an event in the last day")


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_probe_and_reads_of_the_concentrators_own_data(eager_celery, client):
    org = Organisation.objects.create(name="Own", code="own")
    user = make_user("dc-own", org, "operator")
    away_from_a_quarter_hour()
    sims = make_meters(4, first_serial=_serials_with_an_event_today())
    with fleet_thread(sims, fleet_class=DlmsGateway, serial="DC-OWN") as gateway:
        # Three registered behind it; the fourth is on the concentrator but not registered.
        dc, meters = _fleet(org, gateway, sims[:3])
        result = concentrators.probe(dc)
        assert result.ok and result.unknown == [sims[3].serial] and result.missing == []
        assert dict(ReportedMeter.objects.values_list("serial", "channel")) == {
            s.serial: i + 1 for i, s in enumerate(sims)
        }
        line = CommLine.objects.get(concentrator=dc)
        assert line.state == "up" and line.probed_at is not None
        assert abs(line.clock_drift_s) < 5

        # Through the gateway first.
        job = ReadJob.objects.create(
            name="own data", organisation=org, items=["registers", "profile", "events"],
            retries=0, retry_backoff_s=0, backfill_days=0,
        )  # fmt: skip
        run = JobRun.objects.get(pk=actions.start_run(job).pk)
        assert (run.status, run.succeeded) == ("succeeded", 3)
        intervals = IntervalReading.objects.filter(meter__in=meters).count()
        events = EventRecord.objects.filter(meter__in=meters).count()
        assert intervals > 0 and events > 0
        associations = gateway.peak_associations

        # Then from its own data: the same period again, nothing is stored twice.
        dc.read_mode = "own_data"
        dc.save()
        run = actions.reread_period(
            since=run.since, until=run.until, acting_user=user,
            meters=Meter.objects.filter(pk__in=[m.pk for m in meters]),
            items=["registers", "profile", "events"],
        )  # fmt: skip
        run = JobRun.objects.get(pk=run.pk)
        assert (run.status, run.succeeded) == ("succeeded", 3)
        assert check_store_matches_model(meters, run) > 0
        assert IntervalReading.objects.filter(meter__in=meters).count() == intervals
        assert EventRecord.objects.filter(meter__in=meters).count() == events
        # Registers as of the copy's collection time (its quarter-hour), the meter's value then.
        collected = run.until
        read = RegisterRead.objects.get(
            meter=meters[0], channel__obis="1-0:1.8.0*255", read_at=collected
        )
        assert read.value == sim.energy_register(meters[0].serial, 1, collected)
        registers = RegisterRead.objects.filter(meter__in=meters).count()
        run = JobRun.objects.get(pk=actions.start_run(job).pk)
        assert run.succeeded == 3
        assert RegisterRead.objects.filter(meter__in=meters).count() == registers  # same copy
        assert gateway.peak_associations == associations  # one association at a time still

        # The concentrator drops a meter: the probe says it is missing; its read fails as
        # that meter's own (not the concentrator's), the others are read.
        gateway.forget(sims[0].serial)
        result = concentrators.probe(dc)
        assert result.missing == [sims[0].serial]
        run = JobRun.objects.get(pk=actions.start_run(job).pk)
        assert (run.succeeded, run.failed) == (2, 1)
        failed = run.results.get(status="failed")
        assert (failed.meter_id, failed.error_kind) == (meters[0].pk, "UnknownDevice")
        assert CommLine.objects.get(concentrator=dc).state == "up"

        page = client.get(f"/concentrators/{dc.pk}/")
        assert page.status_code == 302  # signed out
        client.force_login(user)
        text = client.get(f"/concentrators/{dc.pk}/").content.decode()
        assert "Its own collected data" in text
        assert "1 not reported by it" in text and "channel 2" in text
        unknown = text.split('id="unknown-meters"')[1]
        assert sims[3].serial in unknown and sims[1].serial not in unknown

    # The concentrator is lost: its probe is one fault and one alarm, no meter unreachable.
    AlarmRule.objects.create(name="comm", organisation=org, kinds=[EventKind.LINE_DOWN])
    result = concentrators.probe(dc)
    assert not result.ok and "ConnectionFailed" in result.error
    line = CommLine.objects.get(concentrator=dc)
    assert line.state == "down" and line.consecutive_failures == 1
    alarms = Alarm.objects.filter(organisation=org, state__in=OPEN_STATES)
    assert [(a.kind, a.line_id) for a in alarms] == [(EventKind.LINE_DOWN, line.pk)]
    failing = CommStatus.objects.filter(meter__in=meters, consecutive_failures__gt=0)
    assert list(failing.values_list("meter_id", flat=True)) == [meters[0].pk]  # its own read
    assert ReportedMeter.objects.filter(concentrator=dc).count() == 3  # kept from the last
