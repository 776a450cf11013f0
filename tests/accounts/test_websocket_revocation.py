"""Every websocket closes when its user signs out, is deactivated, loses a role or its scope
changes (an organisation grant revoked or added, a granted organisation moved).

Through the real ASGI application and the real channels-redis layer: the push on sign-out,
on any write of the user and on any change of its organisation grants, and the periodic
re-check for a change made behind the application's back (here: straight in the database,
or an organisation moved). Generated over every websocket route.
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing.websocket import WebsocketCommunicator
from django.contrib.auth.models import Group
from django.db import connection, connections
from django.test import Client
from guardian.shortcuts import assign_perm, remove_perm
from rest_framework.test import APIClient

from accounts import roles
from accounts.models import Organisation, User
from accounts.sessions import access_fingerprint
from amisite import websocket
from amisite.asgi import application
from amisite.routing import websocket_urlpatterns
from amisite.websocket import ACCESS_CHANGED

pytestmark = pytest.mark.django_db(transaction=True)


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
    if "<int:bulk_id>" in route:
        from collection.commands.models import CommandKind
        from loadcontrol.models import BulkCommand

        bulk = BulkCommand.objects.create(
            organisation=world.org_a, kind=CommandKind.values[0], requested_by=world.operator_a
        )
        route = route.replace("<int:bulk_id>", str(bulk.pk))
    assert "<" not in route, f"no object for the websocket route {route}: add one here"
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


GRANT = "accounts.access_organisation"


def _grant_other_organisation(world):
    assign_perm(GRANT, world.operator_a, world.org_b)


def _grant_revoked(world, client):
    remove_perm(GRANT, world.operator_a, world.org_b)


def _grant_revoked_behind_the_back(world, client):
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM guardian_userobjectpermission WHERE user_id = %s", [world.operator_a.pk]
        )


def _organisation_granted(world, client):
    assign_perm(GRANT, world.operator_a, world.org_b)


def _grant_inside_own_subtree(world):
    """A district below the user's own organisation, also granted to the user: while it is
    inside, the user's scope is their own subtree (the alarm socket joins that group)."""
    district = Organisation.objects.create(name="North-East", code="north-east", parent=world.org_a)
    assign_perm(GRANT, world.operator_a, district)


def _moved_out_of_subtree(world, client):
    """Still granted, now outside the subtree: the scope has two roots, the socket had one."""
    district = Organisation.objects.get(code="north-east")
    district.parent = world.org_b
    district.save()


EVENTS = {
    "logout": _logout,
    "deactivated": _deactivate,
    "role changed": _lose_role,
    "deactivated in the database": _behind_the_back,
    "role removed in the database": _role_removed_behind_the_back,
    "organisation grant revoked": _grant_revoked,
    "organisation grant revoked in the database": _grant_revoked_behind_the_back,
    "organisation granted": _organisation_granted,
    "organisation moved out of the user's subtree": _moved_out_of_subtree,
}
# What exists before the socket opens.
SETUP = {
    "organisation grant revoked": _grant_other_organisation,
    "organisation grant revoked in the database": _grant_other_organisation,
    "organisation moved out of the user's subtree": _grant_inside_own_subtree,
}
# No push: only the periodic re-check notices these.
PERIODIC = {
    "deactivated in the database",
    "role removed in the database",
    "organisation grant revoked in the database",
    "organisation moved out of the user's subtree",
}


@pytest.mark.parametrize("event", list(EVENTS))
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.asyncio
async def test_socket_closes_when_access_changes(world, settings, route, event):
    periodic = event in PERIODIC
    # The push cases must not be saved by the periodic check: make it slower than the wait.
    settings.AMI_WS_RECHECK_SECONDS = 0.3 if periodic else 60
    pattern = next(p for p in websocket_urlpatterns if str(p.pattern) == route)
    path = await sync_to_async(_route_path)(pattern, world)
    if event in SETUP:
        await sync_to_async(SETUP[event])(world)
    client, cookie = await sync_to_async(_signed_in)(world.operator_a)
    await sync_to_async(connections.close_all)()
    ws = await _open(path, cookie)
    await sync_to_async(EVENTS[event])(world, client)
    await sync_to_async(connections.close_all)()
    # 4403: the status socket's own refresh may notice a deactivation first.
    assert await _closed(ws, timeout=5) in (ACCESS_CHANGED, 4403)
    await ws.disconnect()


@pytest.mark.asyncio
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


@pytest.mark.asyncio
async def test_periodic_rechecks_of_one_session_share_one_fingerprint(world, settings, monkeypatch):
    """A page's alarm and status sockets come due together: one fingerprint serves both
    (and a fingerprint of moments ago serves a late one); another session, or a later
    moment, takes its own."""
    settings.AMI_WS_RECHECK_SECONDS = 60
    calls = []

    def counting(user_id, session_key):
        calls.append(session_key)
        return access_fingerprint(user_id, session_key)

    monkeypatch.setattr(websocket, "access_fingerprint", counting)
    _, cookie = await sync_to_async(_signed_in)(world.operator_a)
    _, other = await sync_to_async(_signed_in)(world.operator_a)
    key, other_key = (c.decode().split("=", 1)[1] for c in (cookie, other))
    user_id = world.operator_a.pk
    first, second = await asyncio.gather(
        websocket.shared_fingerprint(user_id, key), websocket.shared_fingerprint(user_id, key)
    )
    assert first == second is not None and calls == [key]
    assert await websocket.shared_fingerprint(user_id, key) == first and calls == [key]
    await websocket.shared_fingerprint(user_id, other_key)
    assert calls == [key, other_key]
    monkeypatch.setattr(websocket, "SHARED_RECHECK_SECONDS", 0)  # its moment has passed
    assert await websocket.shared_fingerprint(user_id, key) == first
    assert calls == [key, other_key, key]


def test_sessions_recheck_at_their_own_instant_spread_over_the_interval(settings):
    """Sessions that connected together (browsers back after a restart) re-check spread
    over the interval, each never longer than the interval apart, and the sockets of one
    session at the same instant (so they share one fingerprint)."""
    from amisite.websocket import recheck_delay

    settings.AMI_WS_RECHECK_SECONDS = 60
    now = 1_800_000_000.0
    due = [now + recheck_delay(user, f"session-{user}", now) for user in range(1000)]
    assert all(now < t <= now + 60 for t in due)
    per_ten_seconds = [sum(1 for t in due if now + k <= t < now + k + 10) for k in range(0, 60, 10)]
    assert max(per_ten_seconds) < 2 * 1000 / 6, per_ten_seconds  # no burst
    # One session: the next instant is a whole interval after the last, from any socket.
    first = now + recheck_delay(7, "s", now)
    assert recheck_delay(7, "s", first + 0.01) == pytest.approx(59.99)
    assert now + 3 + recheck_delay(7, "s", now + 3) == pytest.approx(first)
