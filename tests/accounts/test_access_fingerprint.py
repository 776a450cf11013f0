"""`access_fingerprint`, the re-check every open websocket runs each minute: what changes it
(organisation grants, the user's own and through a role; a granted organisation moving), what
does not, and its cost in queries (2,000 sockets run it every minute)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from guardian.shortcuts import assign_perm, remove_perm

from accounts import access_cache, roles
from accounts.models import Organisation, User
from accounts.sessions import _holdings, _holdings_query, access_fingerprint

pytestmark = pytest.mark.django_db

GRANT = "accounts.access_organisation"


def _session(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def test_a_recheck_is_three_queries_grants_included(world, django_assert_num_queries):
    assign_perm(GRANT, world.operator_a, world.org_b)
    assign_perm(GRANT, Group.objects.get(name=roles.OPERATOR), world.utility)
    key = _session(world.operator_a)
    access_fingerprint(world.operator_a.pk, key)  # content types cached, as in a process
    with django_assert_num_queries(3):  # user with organisation, session, holdings
        assert access_fingerprint(world.operator_a.pk, key) is not None


def test_grants_of_the_user_and_of_its_roles_change_it(world):
    user = world.operator_a
    before = access_fingerprint(user.pk, None)
    assign_perm(GRANT, user, world.org_b)
    granted = access_fingerprint(user.pk, None)
    assert granted != before
    assign_perm("accounts.operate_organisation", user, world.org_b)
    assert access_fingerprint(user.pk, None) != granted  # write scope widened
    remove_perm("accounts.operate_organisation", user, world.org_b)
    assert access_fingerprint(user.pk, None) == granted
    remove_perm(GRANT, user, world.org_b)
    assert access_fingerprint(user.pk, None) == before
    assign_perm(GRANT, Group.objects.get(name=roles.OPERATOR), world.org_b)
    assert access_fingerprint(user.pk, None) != before


def test_moving_a_granted_organisation_changes_it_an_unrelated_one_does_not(world):
    user = world.operator_a
    granted = Organisation.objects.create(name="East", code="east", parent=world.org_b)
    other = Organisation.objects.create(name="West", code="west", parent=world.org_b)
    assign_perm(GRANT, user, granted)
    before = access_fingerprint(user.pk, None)
    other.parent = world.utility
    other.save()
    assert access_fingerprint(user.pk, None) == before
    granted.parent = world.utility
    granted.save()
    assert access_fingerprint(user.pk, None) != before


def _pushes(callbacks) -> list:
    """The sockets' pushes among the after-commit callbacks (not the access cache's bump)."""
    return [c for c in callbacks if c is not access_cache.bump]


def test_a_grant_given_or_taken_pushes_a_recheck_to_its_holders(
    world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as pushed:
        assign_perm(GRANT, world.operator_a, world.org_b)
    assert len(_pushes(pushed)) == 1
    with django_capture_on_commit_callbacks() as pushed:
        remove_perm(GRANT, world.operator_a, world.org_b)
    assert len(_pushes(pushed)) == 1
    operators = Group.objects.get(name=roles.OPERATOR)
    with django_capture_on_commit_callbacks() as pushed:
        assign_perm(GRANT, operators, world.org_b)
    assert len(_pushes(pushed)) == operators.user_set.count() > 0
    with django_capture_on_commit_callbacks() as pushed:
        assign_perm("meters.view_meter", world.operator_a)  # not an organisation grant
    assert len(_pushes(pushed)) == 0


def test_the_statement_compiled_once_answers_for_each_user_what_the_orm_does(world):
    """`_holdings` runs one compiled statement with the user's id put in: each user gets
    their own rows (never the user it was compiled with, or the previous caller's), the same
    as the ORM's query for them, whatever order the users come in."""
    assign_perm(GRANT, world.operator_a, world.org_b)
    assign_perm("accounts.operate_organisation", world.operator_a, world.org_a)
    assign_perm(GRANT, Group.objects.get(name=roles.ENGINEER), world.utility)
    world.operator_b.user_permissions.add(Permission.objects.get(codename="view_meter"))
    lonely = User.objects.create_user("lonely", organisation=world.org_a)
    users = [world.operator_a, world.operator_b, world.engineer_a, lonely, world.operator_a]
    organisations = ContentType.objects.get_for_model(Organisation).pk

    def orm(user):
        return sorted(_holdings_query(user.pk, organisations), key=str)

    got = {user.pk: sorted(_holdings(user.pk), key=str) for user in reversed(users)}
    for user in users:
        assert sorted(_holdings(user.pk), key=str) == got[user.pk] == orm(user)
    assert ("access_organisation", world.org_b.path) in got[world.operator_a.pk]
    assert ("operate_organisation", world.org_a.path) in got[world.operator_a.pk]
    assert ("access_organisation", world.utility.path) in got[world.engineer_a.pk]
    assert ("access_organisation", world.utility.path) not in got[world.operator_a.pk]
    assert got[lonely.pk] == []
    assert len({tuple(rows) for rows in got.values()}) == 4  # four users, four answers
