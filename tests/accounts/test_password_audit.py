"""Every door that changes a password writes one activity row: own page, admin, user API."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import ActivityLog

pytestmark = pytest.mark.django_db
NEW = "Fresh-secret-pass-42"


def _rows(user):
    return ActivityLog.objects.filter(action="password_changed", object_id=str(user.pk))


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_administrator_changes_its_own_password_in_the_admin(world):
    admin = world.admin_a
    answer = _client(admin).post(
        "/admin/password_change/",
        {"old_password": "pw-admin-a", "new_password1": NEW, "new_password2": NEW},
    )
    assert answer.status_code == 302, answer.content
    rows = _rows(admin)
    assert rows.count() == 1 and rows.get().user == admin


def test_superuser_sets_a_users_password_in_the_admin(world):
    user = world.operator_a
    answer = _client(world.superuser).post(
        f"/admin/accounts/user/{user.pk}/password/",
        {"password1": NEW, "password2": NEW, "usable_password": "true"},
    )
    assert answer.status_code == 302, answer.content
    rows = _rows(user)
    assert rows.count() == 1 and rows.get().user == world.superuser


def test_own_password_page_writes_one_row(world):
    user = world.operator_a
    answer = _client(user).post(
        "/account/password/",
        {"old_password": "pw-operator-a", "new_password1": NEW, "new_password2": NEW},
    )
    assert answer.status_code == 302
    assert _rows(user).count() == 1


def test_signing_in_is_no_password_change(world):
    Client().post("/login/", {"username": "operator-a", "password": "pw-operator-a"})
    assert not _rows(world.operator_a).exists()
