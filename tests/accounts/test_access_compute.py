"""`access_cache.compute`: a user's permissions and scopes in one statement, the same answers
as Django's ModelBackend and `scoping.scope_paths` (guardian) give, for users generated over
every kind of holding: roles, own permissions, grants of their own and through roles, for
seeing and for changing, on nested organisations, on one since deleted, a permission that is
not a grant given on an organisation, and none of it."""

from __future__ import annotations

import random

import pytest
from django.contrib.auth.models import Group, Permission
from guardian.models import GroupObjectPermission
from guardian.shortcuts import assign_perm

from accounts import access_cache, roles
from accounts.models import Organisation, User
from accounts.scoping import ACTIONS, scope_paths

pytestmark = pytest.mark.django_db

GRANTS = ("accounts.access_organisation", "accounts.operate_organisation")


def _orm(user_id: int) -> tuple[set, dict]:
    """Permissions and scopes the way a request without the cache asks them."""
    user = User.objects.get(pk=user_id)
    return user.get_all_permissions(), {a: scope_paths(user, a) for a in ACTIONS}


def _computed(user_id: int) -> tuple[set, dict]:
    user = User.objects.get(pk=user_id)
    access_cache.compute(user)
    perms = set(getattr(user, access_cache.PERM_ATTR))
    assert user.get_all_permissions() == perms  # what has_perm now reads: no query behind it
    return perms, {a: scope_paths(user, a) for a in ACTIONS}


def _generated_users(world, count: int, seed: int) -> list[User]:
    rng = random.Random(seed)
    east = Organisation.objects.create(name="East", code="east", parent=world.org_b)
    gone = Organisation.objects.create(name="Gone", code="gone", parent=world.org_a)
    organisations = [world.utility, world.org_a, world.org_b, east, gone]
    own_choices = [None, world.utility, world.org_a, world.org_b, east]
    groups = list(Group.objects.all())
    loose = list(Permission.objects.filter(content_type__app_label__in=["meters", "vending"]))
    not_a_grant = Permission.objects.get(codename="change_organisation")
    for group in rng.sample(groups, 3):  # roles with grants of their own
        for perm in GRANTS:
            if rng.random() < 0.6:
                assign_perm(perm, group, rng.choice(organisations))
    users = []
    for n in range(count):
        user = User.objects.create_user(f"gen-{seed}-{n}", organisation=rng.choice(own_choices))
        user.groups.set(rng.sample(groups, rng.randint(0, 2)))
        user.user_permissions.set(rng.sample(loose, rng.randint(0, 3)))
        for perm in GRANTS:
            for organisation in rng.sample(organisations, rng.randint(0, 2)):
                assign_perm(perm, user, organisation)
        if rng.random() < 0.3:
            assign_perm(not_a_grant, user, rng.choice(organisations))  # a change, not a scope
        users.append(user)
    gone.delete()  # its grants stay behind in guardian's rows, pointing at nothing
    return users


def test_one_statement_answers_what_the_backend_and_guardian_do(world):
    users = _generated_users(world, 40, seed=21)
    users += [world.operator_a, world.engineer_b, world.admin_a, world.customer]
    assert GroupObjectPermission.objects.exists()
    answers = set()
    for user in users + users[::-1]:  # each after every other: no answer carries over
        expected = _orm(user.pk)
        assert _computed(user.pk) == expected, user.username
        answers.add((frozenset(expected[0]), repr(expected[1])))
    assert len(answers) > 20  # the generated users differ, so the comparison means something


def test_the_scopes_it_finds(world):
    """Not only equal to the ORM's answers: the right ones, by hand."""
    user = world.operator_a
    assign_perm("accounts.access_organisation", user, world.org_b)
    operators = Group.objects.get(name=roles.OPERATOR)
    assign_perm("accounts.operate_organisation", operators, world.org_b)
    assign_perm("accounts.access_organisation", user, world.utility)
    perms, scopes = _computed(user.pk)
    assert "meters.view_meter" in perms  # through the operator role
    assert scopes["view"] == [world.utility.path]  # the others lie inside it
    assert scopes["change"] == sorted([world.org_a.path, world.org_b.path])
    nobody = User.objects.create_user("nobody")
    assert _computed(nobody.pk) == (set(), {a: [] for a in ACTIONS})


def test_a_page_with_an_expired_entry_asks_one_statement_for_all_of_it(
    world, client, settings, django_assert_max_num_queries
):
    """What the cache exists for: a request whose entry ran out computes the user's
    permissions and both scopes in one statement, and the next request asks none of it."""
    settings.AMI_ACCESS_CACHE_SECONDS = 60
    client.force_login(world.operator_a)
    client.get("/meters/")  # warm: content types, sessions
    access_cache.cache.delete(access_cache._user_key(world.operator_a.pk))
    user = User.objects.get(pk=world.operator_a.pk)
    with django_assert_max_num_queries(1):
        access_cache.prime(user)
    assert getattr(user, access_cache.PERM_ATTR) == _orm(user.pk)[0]
    assert set(getattr(user, access_cache.SCOPE_ATTR)) == {"view", "write"}
