"""HLS identities: the head-end's own system title comes from the installation (or the
meter), and a meter answering with a title other than the registered one is refused --
a typed security failure, logged, audited and alarmed, nothing stored. Against the real
simulator over loopback."""

from __future__ import annotations

import logging

import pytest

from accounts.models import ActivityLog
from collection import actions
from collection.models import JobRun
from collection.simulators.dlms_fleet import DlmsFleet, SimulatedMeter
from meters.alarms.events import DERIVED_CODE_OF, DERIVED_LOG, EventKind
from meters.alarms.models import Alarm, AlarmRule
from meters.store import EventRecord, RegisterRead
from tests.collection.test_invocation_counter import eager_celery, hls_meter  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]


def read(meter, user):
    run = actions.request_on_demand_read(meter, ["clock", "registers"], acting_user=user)
    return JobRun.objects.get(pk=run.pk)


def test_a_meter_answering_another_system_title_is_refused(world, caplog):
    AlarmRule.objects.create(
        name="security", organisation=world.org_a, kinds=[EventKind.SYSTEM_TITLE_MISMATCH]
    )
    registered = SimulatedMeter("90000001")
    impostor = SimulatedMeter("90000001", system_title=b"XYZ00001")  # same keys, other title
    with DlmsFleet([impostor]).running_in_thread() as fleet:
        meter = hls_meter(world, fleet, registered)  # registers the genuine title
        with caplog.at_level(logging.WARNING, logger="collection.actions"):
            run = read(meter, world.operator_a)
    result = run.results.get()
    assert (run.status, result.status, result.error_kind) == (
        "failed",
        "failed",
        "SystemTitleMismatch",
    )
    assert "58595A3030303031" in result.error and registered.system_title.hex().upper() in (
        result.error
    )
    assert not RegisterRead.objects.filter(meter=meter).exists()  # nothing accepted
    assert "security failure on meter 90000001" in caplog.text
    entry = ActivityLog.objects.get(action="security_failure")
    assert entry.outcome == "failed" and entry.changes["received"] == "58595A3030303031"
    event = EventRecord.objects.get(meter=meter, log=DERIVED_LOG)
    assert event.code == DERIVED_CODE_OF[EventKind.SYSTEM_TITLE_MISMATCH]
    alarm = Alarm.objects.get(meter=meter)
    assert alarm.kind == EventKind.SYSTEM_TITLE_MISMATCH


def test_the_genuine_title_reads_and_the_head_end_title_is_configurable(world, settings):
    settings.AMI_CLIENT_SYSTEM_TITLE = "4142430000000002"
    genuine = SimulatedMeter("90000001")
    with DlmsFleet([genuine]).running_in_thread() as fleet:
        meter = hls_meter(world, fleet, genuine)
        run = read(meter, world.operator_a)
        assert run.status == "succeeded", run.results.get().error
        assert fleet.state_of(genuine.serial).last_client_title == bytes.fromhex("4142430000000002")
        # A utility that gave this meter its own head-end title: that one is presented.
        meter.client_system_title = "4142430000000099"
        meter.save()
        run = read(meter, world.operator_a)
        assert run.status == "succeeded", run.results.get().error
        assert fleet.state_of(genuine.serial).last_client_title == bytes.fromhex("4142430000000099")
    assert not Alarm.objects.exists()


def test_the_meter_page_shows_both_titles(world, client, settings):
    settings.AMI_CLIENT_SYSTEM_TITLE = "4142430000000002"
    meter = world.grid_a.meters[0]
    meter.system_title = "53494d0000000001"
    meter.save()
    client.force_login(world.operator_a)
    page = client.get(f"/meters/{meter.serial}/").content.decode()
    assert "meter <code>53494D0000000001</code>, head-end <code>4142430000000002</code>" in page
    assert "installation setting" in page
