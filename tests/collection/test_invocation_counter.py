"""HLS reads keep the invocation counter in the database and recover it when it is lost."""

import pytest

from collection import actions
from collection.models import InvocationCounter, JobRun
from collection.simulators.dlms_fleet import DlmsFleet, make_meters
from collection.targets import client_system_title

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def eager_celery():
    from amisite.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def hls_meter(world, fleet, sim):
    meter = world.grid_a.meters[0]
    address = fleet.address_of(sim.serial)
    meter.serial = sim.serial
    meter.host, meter.port, meter.dlms_server_address = (
        address.host,
        address.port,
        address.server_address,
    )
    meter.security, meter.dlms_client_address = "high", 1
    meter.auth_key, meter.block_key = sim.auth_key.hex(), sim.block_key.hex()
    meter.system_title = sim.system_title.hex()
    meter.timeout_s, meter.retries = 5, 0
    meter.save()
    return meter


def read(meter, user):
    run = actions.request_on_demand_read(meter, ["clock", "registers"], acting_user=user)
    return JobRun.objects.get(pk=run.pk)


def test_counter_is_persisted_and_never_reused(world, eager_celery):
    sims = make_meters(1)
    with DlmsFleet(sims, interface="wrapper").running_in_thread() as fleet:
        meter = hls_meter(world, fleet, sims[0])
        first = read(meter, world.operator_a)
        assert first.status == "succeeded", first.results.get().error
        after_first = InvocationCounter.objects.get().next_value
        second = read(meter, world.operator_a)
        assert second.status == "succeeded", second.results.get().error
        assert InvocationCounter.objects.get().next_value > after_first > 1
        assert client_system_title() == b"AMI" + bytes.fromhex("0000000001")


def test_lost_counter_is_recovered_through_the_public_client(world, eager_celery):
    sims = make_meters(1)
    with DlmsFleet(sims, interface="wrapper").running_in_thread() as fleet:
        meter = hls_meter(world, fleet, sims[0])
        assert read(meter, world.operator_a).status == "succeeded"
        # A restored backup: the stored counter goes back below what the meter has seen.
        InvocationCounter.objects.update(next_value=1)
        run = read(meter, world.operator_a)
        assert run.status == "succeeded", run.results.get().error
        assert InvocationCounter.objects.get().next_value > 2
