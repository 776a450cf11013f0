"""Nobody but a superuser hands out a privilege it does not hold: every field, every door.

Generated over (privileged field x door) for a target the actor may otherwise edit, and
over (target above the actor x door). A meta-test fails when the user model gains a field
that could carry a privilege and is not in PRIVILEGED_FIELDS.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import models
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from accounts import roles
from accounts.actions import OutOfScope, grant_organisation
from accounts.models import User
from tests.admin_forms import admin_url, change_url, page_data, staff_client
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def _all_powers():
    group, _ = Group.objects.get_or_create(name="all powers")
    group.permissions.set(Permission.objects.all())
    return group


def _limited_actor(world):
    """A staff user who may manage users but holds no operator permission."""
    group, _ = Group.objects.get_or_create(name="user managers")
    group.permissions.set(
        Permission.objects.filter(
            content_type__app_label="accounts",
            codename__in=["view_user", "add_user", "change_user", "delete_user"],
        )
    )
    user = make_user("limited-a", world.org_a, is_staff=True)
    user.groups.add(group)
    return User.objects.get(pk=user.pk)


# field -> (world -> (actor, value to post in the admin, value to post in the API, check))
# `check(target)` is True when the target now holds the privilege (the attack worked).
PRIVILEGED_FIELDS = {
    "is_superuser": (
        lambda w: (w.admin_a, "on", True),
        lambda u: u.is_superuser,
    ),
    "is_staff": (
        lambda w: (w.admin_a, "on", True),
        lambda u: u.is_staff,
    ),
    "user_permissions": (
        lambda w: (
            w.admin_a,
            [str(Permission.objects.get(codename="change_permission").pk)],
            [Permission.objects.get(codename="change_permission").pk],
        ),
        lambda u: u.user_permissions.exists(),
    ),
    # A group that is no role (all permissions): never grantable but by a superuser.
    "groups": (
        lambda w: (w.admin_a, [str(_all_powers().pk)], ["all powers"]),
        lambda u: u.groups.filter(name="all powers").exists(),
    ),
    # A role whose permissions the actor does not hold.
    "groups (role not held)": (
        lambda w: (
            _limited_actor(w),
            [str(Group.objects.get(name=roles.OPERATOR).pk)],
            [roles.OPERATOR],
        ),
        lambda u: u.groups.filter(name=roles.OPERATOR).exists(),
    ),
    "organisation": (
        lambda w: (w.admin_a, str(w.org_b.pk), w.org_b.pk),
        lambda u: u.organisation.code == "south",
    ),
}
# The API names some fields differently.
API_NAMES = {"groups": "roles", "groups (role not held)": "roles"}
FIELD_DOORS = ("admin_change", "admin_add", "api_create", "api_patch", "api_put")


def _fresh_target(world):
    """A plain user of organisation A the actor may edit (no role, so nothing above)."""
    return make_user("plain-a", world.org_a)


def _admin_change(client, target, field, value):
    page = client.get(change_url(target))
    assert page.status_code == 200
    data = page_data(page)
    data[field.split(" ")[0]] = value
    return client.post(change_url(target), data), target.pk


def _admin_add(client, world, field, value):
    url = admin_url(User, "add")
    page = client.get(url)
    assert page.status_code == 200
    data = page_data(page)
    data.update(username="added-a", password1="a-Strong-passw0rd!", password2="a-Strong-passw0rd!")
    data["usable_password"] = "true"
    data[field.split(" ")[0]] = value
    client.post(url, data)
    created = User.objects.filter(username="added-a").first()
    if created is None:
        return None, None
    # The add page leads to the change page, where the rest of the fields are set.
    return _admin_change(client, created, field, value)


def _api(actor):
    client = APIClient()
    client.force_authenticate(actor)
    return client


def _api_payload(world, field, value):
    payload = {"username": "api-added-a", "organisation": world.org_a.pk, "email": "x@a.invalid"}
    payload[API_NAMES.get(field, field)] = value
    return payload


@pytest.mark.parametrize("door", FIELD_DOORS)
@pytest.mark.parametrize("field", list(PRIVILEGED_FIELDS))
def test_no_door_grants_a_privileged_field(world, field, door):
    make_actor, holds = PRIVILEGED_FIELDS[field]
    actor, admin_value, api_value = make_actor(world)
    target = _fresh_target(world)
    if door == "admin_change":
        _admin_change(staff_client(actor), target, field, admin_value)
        touched = [target.pk]
    elif door == "admin_add":
        _admin_add(staff_client(actor), world, field, admin_value)
        touched = list(User.objects.filter(username="added-a").values_list("pk", flat=True))
    elif door == "api_create":
        response = _api(actor).post(
            "/api/users/", _api_payload(world, field, api_value), format="json"
        )
        assert response.status_code in (201, 400, 403), response.content
        touched = list(User.objects.filter(username="api-added-a").values_list("pk", flat=True))
    elif door == "api_patch":
        key = API_NAMES.get(field, field)
        response = _api(actor).patch(f"/api/users/{target.pk}/", {key: api_value}, format="json")
        assert response.status_code in (200, 400, 403), response.content
        touched = [target.pk]
    else:  # api_put
        payload = _api_payload(world, field, api_value)
        payload["username"] = target.username
        response = _api(actor).put(f"/api/users/{target.pk}/", payload, format="json")
        assert response.status_code in (200, 400, 403), response.content
        touched = [target.pk]
    for pk in touched:
        assert not holds(User.objects.get(pk=pk)), f"{field} granted through {door}"


def _self(world):
    return world.admin_a


def _superuser_in_a(world):
    return User.objects.create_superuser("root-a", "r@a.invalid", "pw", organisation=world.org_a)


def _granted_other_region(world):
    user = make_user("granted-a", world.org_a, roles.OPERATOR)
    assign_perm("accounts.access_organisation", user, world.org_b)
    return user


def _raw_permission(world):
    user = make_user("raw-a", world.org_a)
    user.user_permissions.add(Permission.objects.get(codename="change_permission"))
    return user


def _non_role_group(world):
    user = make_user("powerful-a", world.org_a)
    user.groups.add(_all_powers())
    return user


def _staff_above_non_staff(world):
    """The actor is an administrator without staff status (API only); the target is staff."""
    actor = make_user("admin-api-a", world.org_a, roles.ADMINISTRATOR)
    return actor, world.engineer_a


# target -> world -> the user the actor may not touch (actor admin_a unless it says otherwise)
ABOVE = {
    "self": _self,
    "superuser": _superuser_in_a,
    "granted another region": _granted_other_region,
    "raw permission": _raw_permission,
    "group that is no role": _non_role_group,
    "staff, actor is not": _staff_above_non_staff,
    "utility above the region": lambda w: make_user(
        "utility-admin", w.utility, roles.ADMINISTRATOR, is_staff=True
    ),
}
TARGET_DOORS = (
    "admin_change",
    "admin_password",
    "admin_delete",
    "admin_bulk_delete",
    "api_patch",
    "api_put",
    "api_delete",
    "grant_organisation",
)


@pytest.mark.parametrize("door", TARGET_DOORS)
@pytest.mark.parametrize("target_kind", list(ABOVE))
def test_nobody_edits_itself_or_anyone_above(world, target_kind, door):
    made = ABOVE[target_kind](world)
    actor, target = made if isinstance(made, tuple) else (world.admin_a, made)
    before = User.objects.get(pk=target.pk)
    if door.startswith("admin") and not actor.is_staff:
        pytest.skip("the actor has no admin pages")
    client = staff_client(actor)
    if door == "admin_change":
        page = client.get(change_url(target))
        if page.status_code == 200:
            data = page_data(page)
            data["first_name"] = "Hijacked"
            response = client.post(change_url(target), data)
            assert response.status_code in (403, 404)
            assert b'name="_save"' not in page.content
        else:
            assert page.status_code in (403, 404)
    elif door == "admin_password":
        url = f"/admin/accounts/user/{target.pk}/password/"
        response = client.post(url, {"password1": "Hijack-pass-9", "password2": "Hijack-pass-9"})
        assert response.status_code in (403, 404)
    elif door == "admin_delete":
        response = client.post(admin_url(User, "delete", target.pk), {"post": "yes"})
        assert response.status_code in (403, 404)
    elif door == "admin_bulk_delete":
        client.post(
            admin_url(User, "changelist"),
            {"action": "delete_selected", "_selected_action": [target.pk], "post": "yes"},
        )
    elif door.startswith("api"):
        api = _api(actor)
        url = f"/api/users/{target.pk}/"
        if door == "api_patch":
            response = api.patch(url, {"first_name": "Hijacked", "password": "Hijack-pass-9"})
        elif door == "api_put":
            response = api.put(
                url,
                {
                    "username": target.username,
                    "organisation": actor.organisation_id,
                    "first_name": "Hijacked",
                },
            )
        else:
            response = api.delete(url)
        assert response.status_code in (403, 404), response.content
    else:
        with pytest.raises(OutOfScope):
            grant_organisation(target, world.org_a, write=True, acting_user=actor)
    after = User.objects.filter(pk=target.pk).first()
    assert after is not None, "deleted"
    assert after.first_name == before.first_name
    assert after.password == before.password
    assert not after.user_permissions.filter(codename="operate_organisation").exists()


def test_region_admin_posting_is_superuser_on_itself_stays_in_its_region(world):
    """The probe's case: own change form with is_superuser=on, then the other region's meters."""
    client = staff_client(world.admin_a)
    url = change_url(world.admin_a)
    page = client.get(url)
    data = {"username": "admin-a", "is_superuser": "on", "is_staff": "on"}
    if page.status_code == 200:
        data = {**page_data(page), "is_superuser": "on"}
    client.post(url, data)
    world.admin_a.refresh_from_db()
    assert not world.admin_a.is_superuser
    serials = {m["serial"] for m in _api(world.admin_a).get("/api/meters/").json()["results"]}
    assert serials == {m.serial for m in world.grid_a.meters}


def test_admin_still_manages_the_users_below_it(world):
    """The rule refuses escalation, not administration: roles it holds, users in its region."""
    target = world.operator_a
    client = staff_client(world.admin_a)
    page = client.get(change_url(target))
    assert page.status_code == 200
    for hidden in ("is_superuser", "is_staff", "user_permissions"):
        assert hidden not in page.context["adminform"].form.fields
    data = page_data(page)
    data["first_name"] = "Renamed"
    data["groups"] = [str(Group.objects.get(name=roles.ENGINEER).pk)]
    response = client.post(change_url(target), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    target.refresh_from_db()
    assert target.first_name == "Renamed"
    assert list(target.groups.values_list("name", flat=True)) == [roles.ENGINEER]
    created = _api(world.admin_a).post(
        "/api/users/",
        {
            "username": "new-clerk-a",
            "organisation": world.org_a.pk,
            "roles": [roles.VENDING_CLERK],
            "password": "a-Strong-passw0rd!",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    # A superuser may do what nobody else may.
    response = _api(world.superuser).patch(
        f"/api/users/{target.pk}/", {"roles": ["all powers"]}, format="json"
    )
    assert response.status_code == 400  # not a role: roles are the role groups only
    root = staff_client(world.superuser)
    page = root.get(change_url(target))
    data = {**page_data(page), "is_staff": "on"}
    assert root.post(change_url(target), data).status_code == 302
    target.refresh_from_db()
    assert target.is_staff


def test_every_privilege_bearing_user_field_is_covered():
    """A new flag or relation on the user model must get a case in PRIVILEGED_FIELDS."""
    harmless = {"is_active", "organisation"}  # is_active: within scope, nothing above
    covered = {name.split(" ")[0] for name in PRIVILEGED_FIELDS} | harmless
    for field in User._meta.get_fields():
        if field.auto_created and not field.concrete:
            continue  # reverse relations
        bearing = isinstance(field, models.BooleanField) or (
            field.is_relation and field.related_model is not None
        )
        if bearing:
            assert field.name in covered, f"User.{field.name}: add it to PRIVILEGED_FIELDS"
