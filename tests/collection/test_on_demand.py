"""On-demand reads of registered meters against the simulator, through the Celery task."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils.dateparse import parse_datetime

from collection import actions
from collection.choices import ResultStatus, RunStatus
from collection.models import JobRun
from collection.simulators import model as sim_model
from collection.simulators.dlms_fleet import DlmsFleet, Fault, make_meters
from meters.models import CommStatus, Meter

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def eager_celery(settings):
    from amisite.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def fleet():
    meters = make_meters(3)
    meters[2].fault = Fault("timeout")
    with DlmsFleet(meters, interface="wrapper").running_in_thread() as running:
        yield running


def point_meter_at(meter: Meter, fleet, serial: str) -> Meter:
    address = fleet.address_of(serial)
    meter.serial = serial
    meter.host, meter.port, meter.dlms_server_address = (
        address.host,
        address.port,
        address.server_address,
    )
    meter.security, meter.password, meter.timeout_s, meter.retries = "none", "", 3, 0
    meter.save()
    return meter


def test_on_demand_read_returns_registers_clock_and_relay(world, fleet, eager_celery):
    meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
    run = actions.request_on_demand_read(
        meter, ["clock", "registers", "relay", "instantaneous"], acting_user=world.operator_a
    )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.results.get().error
    result = run.results.get()
    assert result.status == ResultStatus.OK
    registers = {r["obis"]: r for r in result.data["registers"]}
    assert set(registers) >= {"1-0:1.8.0*255", "1-0:2.8.0*255"}
    assert result.data["relay"]["connected"] in (True, False)
    assert len(result.data["instantaneous"]["voltages"]) == 3
    assert abs(result.data["clock"]["drift_s"]) < 5
    assert CommStatus.objects.get(meter=meter).last_success is not None
    # The register equals the simulator's deterministic model at the meter's clock reading
    # (within the few seconds between the clock and the register request).
    meter_time = parse_datetime(result.data["clock"]["meter_time"])
    expected = {
        sim_model.energy_register("90000001", 1, meter_time + timedelta(seconds=delta))
        for delta in (-5, 0, 5)
    }
    assert int(Decimal(registers["1-0:1.8.0*255"]["value"])) in expected


def test_unanswering_meter_fails_with_a_typed_error(world, fleet, eager_celery):
    meter = point_meter_at(world.grid_a.meters[1], fleet, "90000003")
    run = actions.request_on_demand_read(meter, ["clock"], acting_user=world.operator_a)
    run = JobRun.objects.get(pk=run.pk)
    assert run.status == RunStatus.FAILED
    result = run.results.get()
    assert result.error_kind == "MeterTimeout" and result.retryable
    status = CommStatus.objects.get(meter=meter)
    assert status.consecutive_failures == 1 and not status.unreachable


def test_unknown_read_item_is_refused(world):
    with pytest.raises(ValueError, match="unknown read items"):
        actions.request_on_demand_read(
            world.grid_a.meters[0], ["everything"], acting_user=world.operator_a
        )


def test_job_sets_a_drifting_clock_within_limits_and_logs_it(world, eager_celery):
    from accounts.models import ActivityLog
    from collection.models import ReadJob

    sims = make_meters(1)
    sims[0].clock_drift_s = 120  # two minutes fast: over the 30 s limit, under 300 s
    with DlmsFleet(sims, interface="wrapper").running_in_thread() as fleet:
        meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
        meter.dlms_client_address, meter.security, meter.password = 17, "low", "12345678"
        meter.save()
        job = ReadJob.objects.create(
            name="clock",
            organisation=world.org_a,
            items=["clock"],
            sync_clock=True,
            clock_drift_limit_s=30,
            clock_max_adjust_s=300,
            retries=0,
        )
        job.meters.set([meter])
        run = JobRun.objects.get(pk=actions.start_run(job).pk)
    assert run.status == RunStatus.SUCCEEDED, run.results.get().error
    log = ActivityLog.objects.get(action="set_clock")
    assert log.object_repr == "90000001"
    assert abs(CommStatus.objects.get(meter=meter).clock_drift_s) < 5  # read after setting


def test_an_instantaneous_read_counts_its_values_and_shows_tables(world, fleet, eager_celery):
    """'Values 0' was shown for a read that returned voltages and currents; the page showed a
    Python dict dump instead of tables."""
    from django.test import Client

    meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
    run = actions.request_on_demand_read(
        meter, ["clock", "registers", "instantaneous"], acting_user=world.operator_a
    )
    result = JobRun.objects.get(pk=run.pk).results.get()
    inst = result.data["instantaneous"]
    present = [*inst["voltages"], *inst["currents"], *inst["angles"]]
    present += [inst["frequency"], inst["active_power"]]
    registers = sum(1 for r in result.data["registers"] if r["value"] is not None)
    assert result.values_stored == registers + sum(v is not None for v in present) > registers
    client = Client()
    client.force_login(world.operator_a)
    html = client.get(f"/runs/{run.pk}/").content.decode()
    assert "{&#x27;" not in html and "{'" not in html  # no dict dump
    for table in ("reading-clock", "reading-registers", "reading-instantaneous"):
        assert table in html
    assert html.count("<td>L") == len(inst["voltages"])
    assert " V</td>" in html and " A</td>" in html and "Wh</td>" in html
