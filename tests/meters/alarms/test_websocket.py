"""Live alarms through the real ASGI app and the real channels-redis layer.

An alarm raised by the Celery task (run eagerly, committing like a worker) reaches the
users whose scope holds it within a second, and never a user of another organisation.
"""

import time

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.testing.websocket import WebsocketCommunicator
from django.db import connections
from django.test import Client

from accounts import roles
from amisite.asgi import application
from meters.alarms.tasks import evaluate_alarm_events
from tests.factories import make_user
from tests.meters.alarms.helpers import POWER_DOWN, POWER_UP, T0, events, make_rule

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """A layer another test file built in its own event loop (same xdist worker) keeps
    asyncio locks bound to that loop: each test here gets layers built in its own."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest_asyncio.fixture(autouse=True)
async def _close_worker_connections():
    """The consumers' database calls run in asgiref's worker thread: close its connection
    too, or PostgreSQL refuses to drop the test database."""
    yield
    await sync_to_async(connections.close_all)()


def cookie_for(user) -> bytes:
    client = Client()
    client.force_login(user)
    connections.close_all()
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def connect(cookie: bytes | None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    if cookie:
        headers.append((b"cookie", cookie))
    ws = WebsocketCommunicator(application, "/ws/alarms/", headers=headers)
    connected, _ = await ws.connect(timeout=5)
    assert connected
    hello = await ws.receive_json_from(timeout=5)
    assert hello["type"] == "hello"
    return ws


def setup_world(world):
    make_rule(world.utility, kinds=["power_failure"])
    head_office = make_user("ops-utility", world.utility, roles.OPERATOR)
    stored = events(world.grid_a.meters[0], POWER_DOWN)
    keys = [[e.meter_id, e.log, e.ts.isoformat(), e.code] for e in stored]
    cookies = [cookie_for(u) for u in (world.operator_a, world.operator_b, head_office)]
    connections.close_all()
    return keys, cookies


def run_task(keys) -> float:
    started = time.monotonic()
    evaluate_alarm_events.apply(args=[keys]).get()  # eager: commits like a worker would
    connections.close_all()
    return started


async def test_alarm_reaches_its_organisation_and_the_utility_never_the_other(world):
    keys, (cookie_a, cookie_b, cookie_utility) = await sync_to_async(setup_world)(world)
    ws_a, ws_b, ws_utility = [await connect(c) for c in (cookie_a, cookie_b, cookie_utility)]
    started = await sync_to_async(run_task)(keys)
    message = await ws_a.receive_json_from(timeout=1)
    latency = time.monotonic() - started
    assert latency < 1.0
    alarm = message["alarm"]
    assert message["type"] == "alarm" and alarm["meter"] == world.grid_a.meters[0].serial
    assert alarm["state"] == "raised" and alarm["organisation"] == world.org_a.pk
    assert (await ws_utility.receive_json_from(timeout=1))["alarm"]["id"] == alarm["id"]
    assert await ws_b.receive_nothing(timeout=1)

    # The restore clears it: the same users hear of that, organisation B still nothing.
    def restore():
        stored = events(world.grid_a.meters[0], POWER_UP, start=T0.replace(minute=50))
        run_task([[e.meter_id, e.log, e.ts.isoformat(), e.code] for e in stored])

    await sync_to_async(restore)()
    cleared = await ws_a.receive_json_from(timeout=1)
    assert cleared["alarm"]["id"] == alarm["id"] and cleared["alarm"]["state"] == "cleared"
    assert await ws_b.receive_nothing(timeout=1)
    for ws in (ws_a, ws_b, ws_utility):
        await ws.disconnect()


async def test_b_hears_its_own_alarm_not_a(world):
    def setup():
        keys, cookies = setup_world(world)
        stored = events(world.grid_b.meters[1], POWER_DOWN)
        connections.close_all()
        return [[e.meter_id, e.log, e.ts.isoformat(), e.code] for e in stored], cookies

    keys_b, (cookie_a, cookie_b, _) = await sync_to_async(setup)()
    ws_a, ws_b = await connect(cookie_a), await connect(cookie_b)
    await sync_to_async(run_task)(keys_b)
    got = await ws_b.receive_json_from(timeout=1)
    assert got["alarm"]["meter"] == world.grid_b.meters[1].serial
    assert await ws_a.receive_nothing(timeout=1)
    await ws_a.disconnect()
    await ws_b.disconnect()


async def test_anonymous_and_customer_are_refused(world):
    cookie = await sync_to_async(cookie_for)(world.customer)
    for c in (None, cookie):
        ws = WebsocketCommunicator(
            application,
            "/ws/alarms/",
            headers=[(b"origin", b"http://localhost"), (b"host", b"localhost")]
            + ([(b"cookie", c)] if c else []),
        )
        connected, code = await ws.connect(timeout=5)
        if connected:
            assert (await ws.receive_output(timeout=5))["type"] == "websocket.close"
        else:
            assert code in (4403, None)


async def test_a_process_is_one_member_of_a_group_however_many_sockets_it_holds(world):
    """Every socket of an event loop hears its groups through one channel of the loop's
    (the hub): one Redis message per process per alarm, not one per socket; the group is
    left when the last socket goes."""
    from channels.layers import get_channel_layer

    from meters.alarms.consumers import organisation_group

    keys, (cookie_a, _, _) = await sync_to_async(setup_world)(world)
    sockets = [await connect(cookie_a) for _ in range(3)]
    layer = get_channel_layer()
    group_key = layer._group_key(organisation_group(world.org_a.pk))
    async with layer.connection(layer.consistent_hash(group_key)) as redis:
        assert await redis.zcard(group_key) == 1
    await sync_to_async(run_task)(keys)
    ids = {(await ws.receive_json_from(timeout=1))["alarm"]["id"] for ws in sockets}
    assert len(ids) == 1
    for ws in sockets:
        await ws.disconnect()
    async with layer.connection(layer.consistent_hash(group_key)) as redis:
        assert await redis.zcard(group_key) == 0
