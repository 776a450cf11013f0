"""Read batches on queues per region and/or protocol (collection/queues.py), through the real
Redis broker: a run's batches are published and read back from the broker's queues."""

from __future__ import annotations

import pytest

from amisite.celery import app
from collection import actions, queues
from collection.models import ReadJob
from meters.choices import NodeKind
from meters.models import GridNode

READ_BATCH = "collection.read_batch"


@pytest.fixture
def broker():
    """Reads the test Redis's queues; every queue a test names is emptied before and after."""
    named: list[str] = []

    def take(name: str) -> list[tuple[int, list[int]]]:
        """Every read batch waiting on `name`, taken off the queue: (run, meter ids)."""
        named.append(name)
        out = []
        with app.connection_for_read() as conn:
            queue = conn.SimpleQueue(name)
            try:
                while True:
                    try:
                        message = queue.get(block=True, timeout=0.5)
                    except queue.Empty:
                        return out
                    assert message.headers["task"] == READ_BATCH
                    run_id, meter_ids = message.decode()[0]
                    out.append((run_id, meter_ids))
                    message.ack()
            finally:
                queue.close()

    def clear(*names: str) -> None:
        with app.connection_for_write() as conn:
            for name in names:
                queue = conn.SimpleQueue(name)
                queue.clear()
                queue.close()

    take.clear = clear  # type: ignore[attr-defined]
    yield take
    clear(*named)


def start(world, django_capture_on_commit_callbacks):
    job = ReadJob.objects.create(
        name="everything", organisation=world.utility, items=["registers"], batch_size=50
    )
    with django_capture_on_commit_callbacks(execute=True):
        run = actions.start_run(job)
    return run


def ids(batches):
    return sorted(pk for _run, meter_ids in batches for pk in meter_ids)


def test_a_batch_for_a_region_lands_on_its_queue(
    world, settings, broker, django_capture_on_commit_callbacks
):
    settings.AMI_COLLECT_ROUTE_BY = "region"
    north, south = "collect.na-r", "collect.sb-r"  # the factories' region codes NA-R and SB-R
    broker.clear(north, south, "collect")
    run = start(world, django_capture_on_commit_callbacks)
    on_north, on_south = broker(north), broker(south)
    assert {r for r, _ in on_north + on_south} == {run.pk}
    assert ids(on_north) == sorted(m.pk for m in world.grid_a.meters)
    assert ids(on_south) == sorted(m.pk for m in world.grid_b.meters)
    assert broker("collect") == []  # nothing left for the catch-all


def test_region_and_protocol_and_the_catch_all(
    world, settings, broker, django_capture_on_commit_callbacks
):
    settings.AMI_COLLECT_ROUTE_BY = "region,protocol"
    stray = world.grid_b.meters[0]
    stray.service_point = None  # no place in the grid: no region
    stray.save()
    names = ["collect.na-r.dlms", "collect.sb-r.dlms", "collect"]
    broker.clear(*names)
    start(world, django_capture_on_commit_callbacks)
    assert ids(broker("collect.na-r.dlms")) == sorted(m.pk for m in world.grid_a.meters)
    assert ids(broker("collect.sb-r.dlms")) == sorted(
        m.pk for m in world.grid_b.meters if m.pk != stray.pk
    )
    assert ids(broker("collect")) == [stray.pk]
    assert "collect.na-r.dlms" in queues.fleet_queues()


def test_default_is_the_one_collect_queue(
    world, settings, broker, django_capture_on_commit_callbacks
):
    settings.AMI_COLLECT_ROUTE_BY = ""
    broker.clear("collect", "collect.na-r")
    start(world, django_capture_on_commit_callbacks)
    every = [m.pk for m in world.grid_a.meters + world.grid_b.meters]
    assert ids(broker("collect")) == sorted(every)
    assert broker("collect.na-r") == []
    assert queues.fleet_queues() == ["collect"]


def test_queue_names_are_safe_and_a_wrong_rule_is_refused(world, settings):
    region = GridNode.objects.filter(kind=NodeKind.REGION).first()
    region.code = "Nord Ost/3"
    region.save()
    settings.AMI_COLLECT_ROUTE_BY = "region"
    assert "collect.nord-ost-3" in queues.fleet_queues()
    settings.AMI_COLLECT_ROUTE_BY = "county"
    with pytest.raises(ValueError, match="unknown key"):
        queues.route_by()


def test_the_queue_depth_metric_covers_every_queue(
    world, settings, broker, monkeypatch, django_capture_on_commit_callbacks
):
    """`ami_queue_depth` from the real broker: the region queues of the rule, a queue a host's
    workers are told to take, and a queue only the broker knows (a task sent to it)."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from amisite.observability import ClusterCollector

    settings.AMI_COLLECT_ROUTE_BY = "region"
    only_in_broker = "reports.depth-test"
    broker.clear("collect.na-r", "collect.sb-r", "collect", only_in_broker)
    monkeypatch.setenv("AMI_WORKER_QUEUES", "collect.na-r,push.depth-test")
    start(world, django_capture_on_commit_callbacks)
    for _ in range(3):
        app.send_task("reports.depth_test_never_run", queue=only_in_broker)

    class Registry:
        def collect(self):
            return ClusterCollector().collect()

    try:
        depth = {
            sample.labels["queue"]: sample.value
            for family in text_string_to_metric_families(generate_latest(Registry()).decode())
            if family.name == "ami_queue_depth"
            for sample in family.samples
        }
    finally:
        broker.clear(only_in_broker)
    north, south = len(broker("collect.na-r")), len(broker("collect.sb-r"))
    assert north and south
    assert depth["collect.na-r"] == north
    assert depth["collect.sb-r"] == south
    assert depth[only_in_broker] == 3
    assert depth["push.depth-test"] == 0  # named by AMI_WORKER_QUEUES, nothing sent yet
    assert depth["collect"] == 0 and "default" in depth
