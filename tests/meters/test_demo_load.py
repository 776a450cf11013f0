"""The demo loaded the ways that need an empty database of their own: twice by the command
(the second load changes nothing), and with its shared lines served and read for real."""

import pytest
from django.core.management import call_command

from meters.demo import load_demo
from meters.models import Meter

pytestmark = pytest.mark.django_db


def test_load_demo_is_idempotent(capsys):
    call_command("load_demo")
    call_command("load_demo")
    assert "already has data" in capsys.readouterr().out
    assert Meter.objects.count() == 48 + 24 + 2 * 4  # DLMS fleet, check meters, two lines


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_demo_shared_line_meters_are_read_by_their_regions_job(monkeypatch, eager_celery):
    """The demo's Modbus RTU and IEC 62056-21 lines, served as the Procfile serves them, are
    read by the regions' own read jobs (what they lack is left out), one line row each."""
    from collection import actions
    from collection.models import JobRun, ReadJob
    from collection.simulators.iec62056_21.server import Iec21Fleet
    from collection.simulators.iec62056_21.server import make_meters as make_iec21
    from collection.simulators.modbus.server import ModbusFleet
    from collection.simulators.modbus.server import make_meters as make_modbus
    from meters.demo import IEC21_FIRST_SERIAL, LINE_PROTOCOL, MODBUS_FIRST_SERIAL
    from meters.models import CommLine
    from meters.store import RegisterRead
    from tests.collection.fleet import away_from_a_quarter_hour, fleet_thread

    units = make_modbus(4, "sdm630", first_serial=MODBUS_FIRST_SERIAL)
    optical = make_iec21(4, first_serial=IEC21_FIRST_SERIAL)
    away_from_a_quarter_hour()
    with (
        fleet_thread(units, fleet_class=ModbusFleet, framing="rtu") as bus,
        fleet_thread(optical, fleet_class=Iec21Fleet) as converter,
    ):
        monkeypatch.setenv("AMI_SIM_MODBUS_PORT", str(bus.port))
        monkeypatch.setenv("AMI_SIM_IEC21_PORT", str(converter.port))
        demo = load_demo()
        reads = RegisterRead.objects.filter(meter__endpoint__protocol__in=LINE_PROTOCOL.values())
        seeded = set(reads.values_list("meter_id", "read_at"))  # the history's month bounds
        for code, protocol in LINE_PROTOCOL.items():
            job = ReadJob.objects.get(organisation=demo.regions[code])
            job.meters.set(Meter.objects.filter(endpoint__protocol=protocol))
            run = JobRun.objects.get(pk=actions.start_run(job).pk)
            assert (run.status, run.succeeded) == ("succeeded", 4), list(
                run.results.values_list("error", flat=True)
            )
    read = [r for r in reads.values_list("meter_id", "read_at", "meter__endpoint__protocol")
            if r[:2] not in seeded]  # fmt: skip
    assert sorted(p for _m, _at, p in read) == ["iec62056_21"] * 16 + ["modbus"] * 16
    lines = CommLine.objects.order_by("key")
    assert [(line.meters, line.state) for line in lines] == [(4, "up"), (4, "up")]
