"""The status websocket through the real ASGI stack and the real (Redis) channel layer."""

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing.websocket import WebsocketCommunicator
from django.db import connections
from django.test import Client

from accounts.models import User
from amisite.asgi import application
from collection.consumers import STATUS_GROUP

pytestmark = pytest.mark.django_db(transaction=True)


def session_cookie_for(username: str) -> bytes:
    user = User.objects.create_user(username, password="x-pass-123456")
    client = Client()
    client.force_login(user)
    connections.close_all()  # this runs in a worker thread whose connection would outlive the test
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def communicator(
    cookie: bytes | None, origin: bytes = b"http://localhost", host: bytes = b"localhost"
) -> WebsocketCommunicator:
    headers = [(b"origin", origin), (b"host", host)]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, "/ws/status/", headers=headers)


def test_channel_layer_is_redis():
    from channels_redis.core import RedisChannelLayer

    assert isinstance(get_channel_layer(), RedisChannelLayer)


def test_channel_layer_reads_outlast_its_blocking_pop():
    """A read timeout no longer than BZPOPMIN's own wait kills the receive loop when idle."""
    layer = get_channel_layer()
    pool = layer.create_pool(0)
    assert pool.connection_kwargs["socket_timeout"] > layer.brpop_timeout + 5


def test_channel_layer_takes_a_reconnect_storm():
    """A thousand sockets of one process join their groups at once after a restart."""
    pool = get_channel_layer().create_pool(0)
    assert pool.max_connections >= 1000


@pytest.mark.asyncio
async def test_more_group_changes_at_once_than_connections_wait_their_turn(settings):
    """Past its connections the layer's pool waits for a free one: 2,000 sockets closing at
    once (a deploy) lost ~490 group_discards to MaxConnectionsError. Here 60 group changes
    at once through 5 connections all land (channels_redis' own pool refuses them), and a
    command that cannot get one within the wait fails with redis' ConnectionError instead
    of hanging."""
    import asyncio

    import redis.asyncio as aioredis

    from amisite.channel_layer import WaitingRedisChannelLayer

    host = dict(settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0])
    host.update(max_connections=5, pool_wait=10.0)
    layer = WaitingRedisChannelLayer(hosts=[host], prefix="ami-test-wait")
    names = [f"specific.test!{i}" for i in range(60)]
    await asyncio.gather(*(layer.group_add("waiting", n) for n in names))
    connection = layer.connection(0)
    assert await connection.zcard(f"{layer.prefix}:group:waiting") == 60
    await asyncio.gather(*(layer.group_discard("waiting", n) for n in names))
    assert await connection.zcard(f"{layer.prefix}:group:waiting") == 0
    pool = layer.create_pool(0)
    pool.max_connections, pool.timeout = 1, 0.2
    held = await pool.get_connection()
    with pytest.raises(aioredis.ConnectionError, match="No connection available"):
        await pool.get_connection()
    await pool.release(held)
    await pool.disconnect()
    await layer.flush()


@pytest.mark.asyncio
async def test_signed_in_user_gets_snapshot_and_published_updates():
    cookie = await sync_to_async(session_cookie_for)("op")
    ws = communicator(cookie)
    connected, _ = await ws.connect(timeout=5)
    assert connected
    first = await ws.receive_json_from(timeout=5)
    assert first["type"] == "status" and "server_time" in first["status"]
    await get_channel_layer().group_send(
        STATUS_GROUP, {"type": "status.update", "status": {"workers": 3}}
    )
    update = await ws.receive_json_from(timeout=5)
    assert update == {"type": "status", "status": {"workers": 3}}
    await ws.disconnect()


@pytest.mark.asyncio
async def test_anonymous_user_is_refused():
    ws = communicator(None)
    connected, code = await ws.connect(timeout=5)
    if connected:  # accepted then closed is also a refusal; it must not stay open
        assert (await ws.receive_output(timeout=5))["type"] == "websocket.close"
    else:
        assert code == 4401 or code is None


@pytest.mark.asyncio
async def test_foreign_origin_is_refused():
    cookie = await sync_to_async(session_cookie_for)("op2")
    ws = communicator(cookie, origin=b"http://evil.example.com")
    connected, _ = await ws.connect(timeout=5)
    assert not connected


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("origin", "host"),
    [
        (b"http://localhost:9999", b"localhost"),  # another service on the same host
        (b"https://localhost", b"localhost"),  # another scheme
        (b"http://localhost", b"localhost:8000"),  # the site runs on another port
        (b"http://localhost:8001", b"localhost:8000"),
        (b"http://evil.example.com", b"evil.example.com"),  # not an allowed host at all
        (b"null", b"localhost"),
    ],
)
async def test_origin_must_match_scheme_host_and_port(origin, host):
    cookie = await sync_to_async(session_cookie_for)("op3")
    ws = communicator(cookie, origin=origin, host=host)
    connected, _ = await ws.connect(timeout=5)
    assert not connected


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("origin", "host"),
    [(b"http://localhost:8000", b"localhost:8000"), (b"http://LOCALHOST:80", b"localhost")],
)
async def test_same_origin_is_accepted(origin, host):
    cookie = await sync_to_async(session_cookie_for)("op4")
    ws = communicator(cookie, origin=origin, host=host)
    connected, _ = await ws.connect(timeout=5)
    assert connected
    await ws.disconnect()


@pytest.mark.asyncio
async def test_trusted_origin_behind_a_tls_proxy_is_accepted(settings):
    """The proxy speaks TLS to the browser and plain HTTP to us: trusted by configuration."""
    settings.CSRF_TRUSTED_ORIGINS = ["https://ami.example.com"]
    settings.ALLOWED_HOSTS = ["ami.example.com"]
    cookie = await sync_to_async(session_cookie_for)("op5")
    ws = communicator(cookie, origin=b"https://ami.example.com", host=b"ami.example.com")
    connected, _ = await ws.connect(timeout=5)
    assert connected
    await ws.disconnect()
    ws = communicator(cookie, origin=b"https://ami.example.com:8443", host=b"ami.example.com")
    connected, _ = await ws.connect(timeout=5)
    assert not connected


@pytest.mark.asyncio
async def test_a_receive_whose_cancellation_was_swallowed_still_ends(settings, monkeypatch):
    """Python 3.11's asyncio.wait_for (inside every redis-py command) drops a cancellation
    that lands as the command finishes, and channels_redis' receive then pops again, for
    good: a closed socket's consumer waited on it forever. Here the first cancellation is
    swallowed the same way; the receive must still end at its next pop."""
    import asyncio

    from channels_redis.core import RedisChannelLayer

    from amisite.channel_layer import WaitingRedisChannelLayer

    original = RedisChannelLayer._brpop_with_clean
    swallowed = []

    async def swallowing(self, index, channel, timeout):
        try:
            return await original(self, index, channel, timeout)
        except asyncio.CancelledError:
            if swallowed:
                raise
            swallowed.append(channel)
            return None  # as wait_for returns the finished command's result instead

    monkeypatch.setattr(RedisChannelLayer, "_brpop_with_clean", swallowing)
    host = dict(settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0])
    layer = WaitingRedisChannelLayer(hosts=[host], prefix="ami-test-swallow")
    layer.brpop_timeout = 1
    channel = await layer.new_channel()
    receive = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0.3)  # blocked in its pop
    receive.cancel()
    done, _ = await asyncio.wait([receive], timeout=5)
    assert swallowed, "the cancellation was not swallowed: this test tests nothing"
    assert done and receive.cancelled()
    await layer.flush()
