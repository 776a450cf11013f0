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
    cookie: bytes | None, origin: bytes = b"http://localhost"
) -> WebsocketCommunicator:
    headers = [(b"origin", origin), (b"host", b"localhost")]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, "/ws/status/", headers=headers)


def test_channel_layer_is_redis():
    layer = get_channel_layer()
    assert type(layer).__name__ == "RedisChannelLayer"


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
