"""Permissions and scope cached between requests (accounts/access_cache.py): a page asks the
database once per user, and every revocation counts on the very next request.

Through the real middleware, the real Redis cache and the pages: a user opens a page of the
other organisation it was granted (filling the cache), access is taken away, and the next
request is refused. Each way of taking it away is a case.
"""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import assign_perm, remove_perm
from rest_framework.test import APIClient

from accounts import access_cache, roles
from accounts.models import User

pytestmark = pytest.mark.django_db

GRANT = "accounts.access_organisation"
# Roles' and own permissions (auth_permission), organisation grants (guardian's tables).
ACCESS_TABLES = ('FROM "auth_permission"', '"guardian_')


@pytest.fixture(autouse=True)
def _cache_on(settings):
    settings.AMI_ACCESS_CACHE_SECONDS = 60
    access_cache.bump()  # nothing from an earlier test
    assert access_cache.enabled()


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _access_queries(captured) -> list[str]:
    return [q["sql"] for q in captured if any(t in q["sql"] for t in ACCESS_TABLES)]


def _other_meter(world) -> str:
    return f"/meters/{world.grid_b.meters[0].serial}/"


def test_the_second_page_asks_nothing_about_permissions_or_scope(world):
    assign_perm(GRANT, world.operator_a, world.org_b)
    client = _client(world.operator_a)
    with CaptureQueriesContext(connection) as first:
        assert client.get("/meters/").status_code == 200
    with CaptureQueriesContext(connection) as second:
        assert client.get("/meters/").status_code == 200
        assert client.get(_other_meter(world)).status_code == 200  # the grant, from the cache
    assert _access_queries(first.captured_queries)  # computed once...
    assert not _access_queries(second.captured_queries), second.captured_queries  # ...kept


def test_users_do_not_share_entries(world):
    """operator-b's scope is its own, though operator-a's is cached and both are operators."""
    assert _client(world.operator_a).get("/meters/").status_code == 200
    client_b = _client(world.operator_b)
    assert client_b.get(f"/meters/{world.grid_a.meters[0].serial}/").status_code == 404
    assert client_b.get(_other_meter(world)).status_code == 200


def _api_as(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def _role_taken_through_the_api(world):
    response = _api_as(world.superuser).patch(
        f"/api/users/{world.operator_a.pk}/", {"roles": []}, format="json"
    )
    assert response.status_code == 200, response.content


def _role_removed(world):
    world.operator_a.groups.remove(Group.objects.get(name=roles.OPERATOR))


def _roles_cleared(world):
    world.operator_a.groups.clear()


def _permission_taken_from_the_role(world):
    Group.objects.get(name=roles.OPERATOR).permissions.remove(
        Permission.objects.get(codename="view_meter")
    )


def _grant_revoked(world):
    remove_perm(GRANT, world.operator_a, world.org_b)


def _role_grant_revoked(world):
    remove_perm(GRANT, Group.objects.get(name=roles.OPERATOR), world.org_b)


def _deactivated_in_the_database(world):
    User.objects.filter(pk=world.operator_a.pk).update(is_active=False)


def _moved_to_another_organisation_in_the_database(world):
    """Its own organisation is now one without the meter (its grant taken in the same go)."""
    remove_perm(GRANT, world.operator_a, world.org_b)
    User.objects.filter(pk=world.operator_a.pk).update(organisation=world.org_a)


# What each case sets up before the first page: the operator sees org_b's meter through...
SETUP = {
    "role taken through the API": "own grant",
    "role removed": "own grant",
    "roles cleared": "own grant",
    "permission taken from the role": "own grant",
    "organisation grant revoked": "own grant",
    "role's organisation grant revoked": "role grant",
    "deactivated in the database": "own grant",
    "moved to another organisation in the database": "own organisation",
}
EVENTS = {
    "role taken through the API": _role_taken_through_the_api,
    "role removed": _role_removed,
    "roles cleared": _roles_cleared,
    "permission taken from the role": _permission_taken_from_the_role,
    "organisation grant revoked": _grant_revoked,
    "role's organisation grant revoked": _role_grant_revoked,
    "deactivated in the database": _deactivated_in_the_database,
    "moved to another organisation in the database": _moved_to_another_organisation_in_the_database,
}


@pytest.mark.parametrize("event", list(EVENTS))
def test_revoked_access_is_refused_on_the_next_request(world, event):
    user = world.operator_a
    how = SETUP[event]
    if how == "own grant":
        assign_perm(GRANT, user, world.org_b)
    elif how == "role grant":
        assign_perm(GRANT, Group.objects.get(name=roles.OPERATOR), world.org_b)
    elif how == "own organisation":
        User.objects.filter(pk=user.pk).update(organisation=world.org_b)
        assign_perm(GRANT, user, world.org_b)
    client = _client(user)
    assert client.get(_other_meter(world)).status_code == 200
    assert client.get(_other_meter(world)).status_code == 200  # now from the cache
    EVENTS[event](world)
    assert client.get(_other_meter(world)).status_code in (302, 403, 404)


def test_a_moved_organisation_is_seen_where_it_is_now_on_the_next_request(world):
    """Scope is made of organisation paths: after a move the cached path names no
    organisation any more, so the entry must go at once (here the user would lose its own
    meters; a granted organisation moved out of reach is the same kind of change)."""
    client = _client(world.operator_b)
    own_meter = f"/meters/{world.grid_b.meters[0].serial}/"
    assert client.get(own_meter).status_code == 200
    assert client.get(own_meter).status_code == 200
    world.org_b.parent = world.org_a
    world.org_b.save()
    assert client.get(own_meter).status_code == 200
    assert client.get(f"/meters/{world.grid_a.meters[0].serial}/").status_code == 404


def test_a_change_committed_while_a_request_computes_is_not_kept(world):
    """A request that read the generation before a change and the rows before its commit
    stores its entry under the old generation: the next request recomputes."""
    user = User.objects.get(pk=world.operator_a.pk)
    primed = access_cache.prime(user)
    assert user.has_perm("meters.view_meter")  # computed from the rows as they were
    User.groups.through.objects.filter(user=user).delete()  # the change: its role taken
    access_cache.bump()  # the change commits (its after-commit bump)
    access_cache.store(user, primed)
    fresh = User.objects.get(pk=world.operator_a.pk)
    assert access_cache.prime(fresh).stored == {}  # the entry stored under the old one: unused
    assert not fresh.has_perm("meters.view_meter")


def test_a_grant_revoked_behind_the_applications_back_counts_within_the_cache_time(world, settings):
    """SQL sends no signal: the entry runs out after AMI_ACCESS_CACHE_SECONDS (or at once
    when an open websocket's re-check notices it, which bumps the generation)."""
    settings.AMI_ACCESS_CACHE_SECONDS = 1
    assign_perm(GRANT, world.operator_a, world.org_b)
    client = _client(world.operator_a)
    assert client.get(_other_meter(world)).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM guardian_userobjectpermission WHERE user_id = %s", [world.operator_a.pk]
        )
    time.sleep(1.5)
    assert client.get(_other_meter(world)).status_code == 404


def test_without_a_shared_cache_nothing_is_kept(world, settings):
    settings.AMI_ACCESS_CACHE_SECONDS = 0
    client = _client(world.operator_a)
    client.get("/meters/")
    with CaptureQueriesContext(connection) as second:
        assert client.get("/meters/").status_code == 200
    assert _access_queries(second.captured_queries)


def test_without_redis_pages_and_grants_still_work_from_the_database(world, settings, caplog):
    settings.CACHES = {
        "default": {
            "BACKEND": "amisite.cache.SharedPoolRedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens there
        }
    }
    client = _client(world.operator_a)
    assert client.get(_other_meter(world)).status_code == 404
    assign_perm(GRANT, world.operator_a, world.org_b)  # its bump fails, the grant does not
    assert client.get(_other_meter(world)).status_code == 200
    assert "access cache" in caplog.text


def test_status_socket_snapshots_take_access_from_the_cache_and_see_revocations(world):
    """The home's status socket recomputes each user's snapshot every 20 s with a fresh user:
    its permissions and scope come from the same cache as pages (no access queries the
    second time), and a grant taken away counts at the next snapshot."""
    from collection.consumers import _snapshot_for

    assign_perm(GRANT, world.operator_a, world.org_b)
    with CaptureQueriesContext(connection) as first:
        assert _snapshot_for(world.operator_a.pk)["meters"]["total"] == 4
    with CaptureQueriesContext(connection) as second:
        assert _snapshot_for(world.operator_a.pk)["meters"]["total"] == 4
    assert _access_queries(first.captured_queries)
    assert _access_queries(second.captured_queries) == []
    remove_perm(GRANT, world.operator_a, world.org_b)
    assert _snapshot_for(world.operator_a.pk)["meters"]["total"] == 2


def test_the_header_organisation_comes_from_the_cache_and_a_rename_shows_at_once(world):
    client = _client(world.operator_a)
    client.get("/meters/")
    org_table = 'FROM "accounts_organisation" WHERE "accounts_organisation"."id"'
    with CaptureQueriesContext(connection) as second:
        page = client.get("/meters/")
    assert f" · {world.org_a.name}<".encode() in page.content
    assert not [q for q in second.captured_queries if org_table in q["sql"]]
    world.org_a.name = "Renamed region"
    world.org_a.save()  # bumps the generation
    assert b" \xc2\xb7 Renamed region<" in client.get("/meters/").content


def test_entries_run_out_at_spread_times_within_the_cache_time(world, settings):
    """Entries stored together must not run out together (a restart's 1,000 reconnecting
    browsers recomputed everyone's access within seconds, every minute), and none may be
    kept past AMI_ACCESS_CACHE_SECONDS."""
    settings.AMI_ACCESS_CACHE_SECONDS = 60
    times = [access_cache.entry_seconds() for _ in range(400)]
    assert min(times) >= 30 and max(times) <= 60
    assert min(times) < 40  # past one 20-s status snapshot, or the crowd stays together
    assert len(set(times)) >= 10
    settings.AMI_ACCESS_CACHE_SECONDS = 1
    assert {access_cache.entry_seconds() for _ in range(50)} == {1}

    settings.AMI_ACCESS_CACHE_SECONDS = 60
    users = [world.operator_a, world.operator_b, world.engineer_a, world.admin_a]
    for user in users:
        assert _client(user).get("/").status_code == 200
    client = access_cache.cache._cache.get_client()
    left = [client.ttl(access_cache.cache.make_and_validate_key(access_cache._user_key(u.pk)))
            for u in users]  # fmt: skip
    assert all(0 < seconds <= 60 for seconds in left), left
