"""A meter whose GET-with-list answer is malformed (it leaves out the items it cannot read: 10
items, 8 results) is still read, with single GETs; its model remembers it and the run says so.
Against the project's DLMS simulator made to misbehave that way, over loopback."""

from __future__ import annotations

import asyncio

import pytest
from django.test import Client

from accounts.models import ActivityLog, Organisation
from collection import actions
from collection.models import JobRun, MeterReadResult, ReadJob
from collection.protocols.dlms.client import DlmsClient
from collection.protocols.dlms.settings import DlmsSettings
from collection.simulators import model as sim
from collection.simulators.dlms_fleet import Fault, make_meters
from meters import obis as obis_codes
from meters.choices import ChannelKind
from meters.models import Channel, MeterModel
from meters.store import RegisterRead
from tests.collection.fleet import fleet_thread
from tests.collection.test_end_to_end import register_fleet, simulated_model
from tests.factories import make_user

MISSING = "1-0:128.8.0*255"  # a (manufacturer-specific) register the simulator does not have
REGISTERS = [obis_codes.normalise(register) for _profile, register, _unit in sim.CHANNELS.values()]


def short_list_meter():
    meters = make_meters(1)
    meters[0].fault = Fault("short-list")
    return meters


def read_registers(fleet, serial, obis, **settings):
    address = fleet.address_of(serial)
    url = f"tcp://{address.host}:{address.port}"

    async def session():
        client = DlmsClient(DlmsSettings(url, server_address=address.server_address, **settings))
        async with client:
            return await client.read_registers(obis), client.with_list_failure

    return asyncio.run(session())


def test_the_client_falls_back_to_single_gets_and_says_why():
    sims = short_list_meter()
    with fleet_thread(sims, interface="wrapper") as fleet:
        values, failure = read_registers(fleet, sims[0].serial, [*REGISTERS, MISSING])
        # A model known to need it skips GET-with-list from the first request.
        again, no_failure = read_registers(
            fleet, sims[0].serial, [*REGISTERS, MISSING], get_with_list=False
        )
    assert failure == "GET-with-list answer malformed (8 results for 10 items)"
    assert no_failure is None
    for got in (values, again):
        by_obis = {value.obis: value for value in got}
        assert all(by_obis[obis].value is not None for obis in REGISTERS)
        assert by_obis[MISSING].value is None and by_obis[MISSING].error


@pytest.mark.django_db(transaction=True)
def test_a_run_reads_the_meter_remembers_its_model_and_reports_it():
    from amisite.celery import app

    org = Organisation.objects.create(name="Gurux-based", code="gx")
    model = simulated_model(org)
    Channel.objects.create(
        meter_model=model, obis=MISSING, name="vendor energy", unit="Wh", kind=ChannelKind.REGISTER
    )
    sims = short_list_meter()
    app.conf.task_always_eager = True
    try:
        with fleet_thread(sims, interface="wrapper") as fleet:
            meters = register_fleet(fleet, sims, org, model)
            job = ReadJob.objects.create(
                name="registers", organisation=org, items=["registers"], retries=0
            )
            first = JobRun.objects.get(pk=actions.start_run(job).pk)
            second = JobRun.objects.get(pk=actions.start_run(job).pk)
    finally:
        app.conf.task_always_eager = False

    assert (first.status, first.succeeded) == ("succeeded", 1), first.results.get().error
    result = MeterReadResult.objects.get(run=first)
    assert "8 results for 10 items" in result.notes and "single GETs" in result.notes
    stored = RegisterRead.objects.filter(meter=meters[0]).values_list("channel__obis", flat=True)
    assert len(set(stored)) == len(REGISTERS)  # every register the meter has, from both runs
    assert MeterModel.objects.get(pk=model.pk).get_with_list is False
    assert ActivityLog.objects.filter(action="set_get_with_list").count() == 1
    # The next run uses single GETs from the start: read, and nothing more to report.
    assert (second.status, second.succeeded) == ("succeeded", 1)
    assert MeterReadResult.objects.get(run=second).notes == ""

    web = Client()
    web.force_login(make_user("ops", org, "operator"))
    page = web.get(f"/runs/{first.pk}/").content.decode()
    assert "GET-with-list answer malformed (8 results for 10 items)" in page
