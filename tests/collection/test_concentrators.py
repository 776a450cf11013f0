"""Data concentrators: meters read through a DLMS gateway (one TCP endpoint, a wPort each),
stored exactly as the value model says; the concentrator's sessions are limited; its loss is
one fault and one alarm, not one per meter; a meter moved to another concentrator keeps its
history and is read through the new one."""

from __future__ import annotations

import asyncio

import pytest

from accounts.models import Organisation
from amisite.celery import app
from collection import actions
from collection.models import JobRun, ReadJob
from collection.protocols import registry
from collection.protocols.driver import Endpoint
from collection.simulators import model as sim
from collection.simulators.dlms_fleet import make_meters
from collection.simulators.dlms_gateway import DlmsGateway
from meters.alarms.engine import derive_unreachable, evaluate_events
from meters.alarms.events import EventKind
from meters.alarms.models import OPEN_STATES, Alarm, AlarmRule
from meters.choices import MeterStatus, Transport
from meters.models import CommLine, CommStatus, DataConcentrator, Meter
from meters.store import IntervalReading, RegisterRead
from tests.collection.fleet import fleet_thread
from tests.collection.test_end_to_end import check_store_matches_model, simulated_model
from tests.factories import make_user


def test_the_gateway_answers_as_itself_and_for_each_meter_behind_it():
    """Over one connection each: the concentrator's own logical device (wPort 1) and two of its
    meters (their wPorts), each with its own name; an unplugged meter is silent."""
    meters = make_meters(3)

    async def main():
        async with DlmsGateway(meters, serial="DC-TEST-1", first_wport=16) as gateway:
            gateway.unplug(meters[2].serial)
            names = {}
            for wport in (1, 16, 17, 18):
                endpoint = Endpoint(
                    protocol="dlms",
                    url=f"tcp://{gateway.host}:{gateway.own_address.port}",
                    timeout_s=1,
                    options={"server_address": wport},
                )
                session = registry.open_session(registry.settings_for(endpoint))
                try:
                    async with session:
                        names[wport] = (await session.read_registers(["0-0:42.0.0*255"]))[0]
                except Exception as exc:  # noqa: BLE001 - the unplugged meter's silence
                    names[wport] = type(exc).__name__
            return names, gateway.reported()

    names, reported = asyncio.run(main())
    assert names[1].raw == b"SIMDC-TEST-1"
    assert names[16].raw == b"SIM" + meters[0].serial.encode()
    assert names[17].raw == b"SIM" + meters[1].serial.encode()
    assert names[18] == "MeterTimeout"
    assert reported == [m.serial for m in meters[:2]]


@pytest.fixture
def eager_celery():
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def _concentrator(org, serial, gateway) -> DataConcentrator:
    return DataConcentrator.objects.create(
        serial=serial, organisation=org, host=gateway.host, port=gateway.own_address.port
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_meters_behind_a_concentrator(eager_celery):
    org = Organisation.objects.create(name="DC", code="dc")
    AlarmRule.objects.create(
        name="comm", organisation=org, kinds=[EventKind.LINE_DOWN, EventKind.METER_UNREACHABLE]
    )
    model = simulated_model(org)
    sims = make_meters(4)
    with (
        fleet_thread(sims, fleet_class=DlmsGateway, serial="DC-A") as gateway_a,
        fleet_thread(sims[:1], fleet_class=DlmsGateway, serial="DC-B", first_wport=40) as gw_b,
    ):
        dc_a, dc_b = _concentrator(org, "DC-A", gateway_a), _concentrator(org, "DC-B", gw_b)
        for s in sims:
            Meter.objects.create(
                serial=s.serial,
                meter_model=model,
                organisation=org,
                status=MeterStatus.ACTIVE,
                transport=Transport.CONCENTRATOR,
                concentrator=dc_a,
                dlms_server_address=gateway_a.address_of(s.serial).server_address,
                timeout_s=2,
                retries=0,
            )
        meters = list(Meter.objects.filter(organisation=org).order_by("serial"))
        job = ReadJob.objects.create(
            name="through the concentrator",
            organisation=org,
            items=["registers", "profile"],
            batch_size=2,
            concurrency=50,
            retries=0,
            retry_backoff_s=0,
            backfill_days=0,
        )
        run = JobRun.objects.get(pk=actions.start_run(job).pk)
        assert (run.status, run.succeeded) == ("succeeded", 4)
        assert check_store_matches_model(meters, run) > 0  # every interval, exactly
        read = RegisterRead.objects.get(meter=meters[0], channel__obis="1-0:1.8.0*255")
        assert read.value == sim.energy_register(meters[0].serial, 1, read.read_at)
        # One session at a time on the concentrator, until its operator allows two.
        assert gateway_a.peak_associations == 1
        line = CommLine.objects.get(concentrator=dc_a)
        assert (line.key, line.state, line.meters) == (f"concentrator:{dc_a.pk}", "up", 4)
        line.max_sessions = 2
        line.save()
        run = JobRun.objects.get(pk=actions.start_run(job).pk)
        assert run.succeeded == 4 and gateway_a.peak_associations == 2

        # A meter moves to concentrator B (a wPort there): read through B, history kept.
        moved = meters[0]
        before = IntervalReading.objects.filter(meter=moved).count()
        moved.concentrator = dc_b
        moved.dlms_server_address = gw_b.address_of(moved.serial).server_address
        moved.save()
        run = JobRun.objects.get(pk=actions.start_run(job).pk)
        assert run.succeeded == 4
        assert IntervalReading.objects.filter(meter=moved).count() >= before > 0
        assert CommLine.objects.get(concentrator=dc_b).meters == 1
        assert gw_b.peak_associations == 1  # it was read through B
    # Both concentrators are lost: one fault and one alarm each, no meter unreachable.
    for _ in range(3):
        run = JobRun.objects.get(pk=actions.start_run(job).pk)
        assert run.failed == 4
    assert not CommStatus.objects.filter(meter__in=meters, consecutive_failures__gt=0)
    evaluate_events(derive_unreachable())
    alarms = Alarm.objects.filter(organisation=org, state__in=OPEN_STATES)
    assert sorted((a.kind, a.line.concentrator.serial) for a in alarms) == [
        (EventKind.LINE_DOWN, "DC-A"),
        (EventKind.LINE_DOWN, "DC-B"),
    ]
    assert CommLine.objects.get(concentrator=dc_a).state == "down"


@pytest.mark.django_db
def test_concentrator_pages(client):
    org = Organisation.objects.create(name="Pages", code="pages")
    other = Organisation.objects.create(name="Other", code="other")
    dc = DataConcentrator.objects.create(serial="DC-P1", name="North", organisation=org, host="h")
    hidden = DataConcentrator.objects.create(serial="DC-X9", organisation=other, host="h")
    CommLine.objects.create(
        key=f"concentrator:{dc.pk}",
        kind="concentrator",
        organisation=org,
        concentrator=dc,
        down=True,
        last_error="ConnectionFailed: refused",
    )
    user = make_user("dc-operator", org, "operator")
    client.force_login(user)
    page = client.get("/concentrators/?q=DC-")
    assert page.status_code == 200
    text = page.content.decode()
    assert "DC-P1" in text and "DC-X9" not in text and "down" in text
    assert client.get(f"/concentrators/{dc.pk}/").status_code == 200
    assert client.get(f"/concentrators/{hidden.pk}/").status_code == 404
    lines = client.get("/lines/?state=down").content.decode()
    assert "North" in lines
