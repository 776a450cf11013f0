"""Every websocket closes when its user signs out, is deactivated or loses a role.

Through the real ASGI application and the real channels-redis layer: the push on sign-out
and on any write of the user, and the periodic re-check for a change made behind the
application's back (here: straight in the database). Generated over every websocket
route.
"""

from __future__ import annotations

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing.websocket import WebsocketCommunicator
from django.contrib.auth.models import Group
from django.db import connections
from django.test import Client
from rest_framework.test import APIClient

from accounts import roles
from accounts.models import User
from amisite.asgi import application
from amisite.routing import websocket_urlpatterns
from amisite.websocket import ACCESS_CHANGED

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest_asyncio.fixture(autouse=True)
async def _close_worker_connections():
    yield
    await sync_to_async(connections.close_all)()


def _route_path(pattern, world) -> str:
    route = str(pattern.pattern)
    if "<int:run_id>" in route:
        from collection.models import JobRun

        run = JobRun.objects.create(organisation=world.org_a)
        route = route.replace("<int:run_id>", str(run.pk))
    return "/" + route


ROUTES = [str(p.pattern) for p in websocket_urlpatterns]


def _signed_in(user) -> tuple[Client, bytes]:
    client = Client()
    client.force_login(user)
    return client, f"sessionid={client.cookies['sessionid'].value}".encode()


async def _open(path: str, cookie: bytes) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie)]
    ws = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await ws.connect(timeout=5)
    assert connected
    return ws


async def _closed(ws: WebsocketCommunicator, timeout: float = 5) -> int:
    """Skip what the socket still sends; return the close code (fails on timeout)."""
    while True:
        message = await ws.receive_output(timeout=timeout)
        if message["type"] == "websocket.close":
            return message.get("code")


def _logout(world, client):
    client.post("/logout/")


def _deactivate(world, client):
    api = APIClient()
    api.force_authenticate(world.admin_a)
    response = api.patch(f"/api/users/{world.operator_a.pk}/", {"is_active": False})
    assert response.status_code == 200, response.content


def _lose_role(world, client):
    api = APIClient()
    api.force_authenticate(world.admin_a)
    response = api.patch(
        f"/api/users/{world.operator_a.pk}/", {"roles": [roles.ANALYST]}, format="json"
    )
    assert response.status_code == 200, response.content


def _behind_the_back(world, client):
    """No push at all: only the periodic re-check can notice."""
    User.objects.filter(pk=world.operator_a.pk).update(is_active=False)


def _role_removed_behind_the_back(world, client):
    world.operator_a.groups.remove(Group.objects.get(name=roles.OPERATOR))


EVENTS = {
    "logout": _logout,
    "deactivated": _deactivate,
    "role changed": _lose_role,
    "deactivated in the database": _behind_the_back,
    "role removed in the database": _role_removed_behind_the_back,
}


@pytest.mark.parametrize("event", list(EVENTS))
@pytest.mark.parametrize("route", ROUTES)
async def test_socket_closes_when_access_changes(world, settings, route, event):
    periodic = "database" in event
    # The push cases must not be saved by the periodic check: make it slower than the wait.
    settings.AMI_WS_RECHECK_SECONDS = 0.3 if periodic else 60
    pattern = next(p for p in websocket_urlpatterns if str(p.pattern) == route)
    path = await sync_to_async(_route_path)(pattern, world)
    client, cookie = await sync_to_async(_signed_in)(world.operator_a)
    await sync_to_async(connections.close_all)()
    ws = await _open(path, cookie)
    await sync_to_async(EVENTS[event])(world, client)
    await sync_to_async(connections.close_all)()
    # 4403: the status socket's own refresh may notice a deactivation first.
    assert await _closed(ws, timeout=5) in (ACCESS_CHANGED, 4403)
    await ws.disconnect()


async def test_an_unchanged_user_keeps_its_socket(world, settings):
    settings.AMI_WS_RECHECK_SECONDS = 0.2
    client, cookie = await sync_to_async(_signed_in)(world.operator_a)
    await sync_to_async(connections.close_all)()
    ws = await _open("/ws/alarms/", cookie)
    # Another user changes: this socket stays open through several re-checks.
    await sync_to_async(_lose_role_of_other)(world)
    await sync_to_async(connections.close_all)()
    hello = await ws.receive_json_from(timeout=5)
    assert hello["type"] == "hello"
    assert await ws.receive_nothing(timeout=1.0)
    await ws.disconnect()


def _lose_role_of_other(world):
    api = APIClient()
    api.force_authenticate(world.admin_a)
    api.patch(f"/api/users/{world.engineer_a.pk}/", {"roles": [roles.ANALYST]}, format="json")
