"""The activity log: written for sign-ins, refusals and writes; scoped; nobody edits it."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ActivityLog

pytestmark = pytest.mark.django_db


def test_login_logout_and_failed_login_are_logged(world):
    client = Client(REMOTE_ADDR="192.0.2.7")
    refused = client.post("/login/", {"username": "operator-a", "password": "wrong"})
    assert refused.status_code == 200  # the form again, with an error
    failed = ActivityLog.objects.get(action="login_failed")
    assert failed.username == "operator-a" and failed.outcome == "failed"
    assert "wrong" not in str(failed.changes) + failed.detail
    response = client.post("/login/", {"username": "operator-a", "password": "pw-operator-a"})
    assert response.status_code == 302
    login = ActivityLog.objects.get(action="login")
    assert login.user == world.operator_a and login.ip_address == "192.0.2.7"
    client.post("/logout/")
    assert ActivityLog.objects.filter(action="logout", user=world.operator_a).exists()


def test_refused_write_is_logged_as_denied(world):
    client = APIClient()
    client.force_authenticate(world.readonly_a)
    meter = world.grid_a.meters[0]
    assert (
        client.patch(f"/api/meters/{meter.pk}/", {"firmware": "x"}, format="json").status_code
        == 403
    )
    denied = ActivityLog.objects.get(outcome="denied")
    assert denied.user == world.readonly_a and denied.action == "api_patch"


def test_activity_log_is_scoped(world):
    admin_a, admin_b = APIClient(), APIClient()
    admin_a.force_authenticate(world.admin_a)
    admin_b.force_authenticate(world.admin_b)
    meter = world.grid_a.meters[0]
    engineer = APIClient()
    engineer.force_authenticate(world.engineer_a)
    assert (
        engineer.patch(f"/api/meters/{meter.pk}/", {"firmware": "9"}, format="json").status_code
        == 200
    )
    row = ActivityLog.objects.get(action="update", object_id=str(meter.pk))
    seen_by_a = admin_a.get("/api/activity/", {"action": "update"}).json()
    assert row.pk in {r["id"] for r in seen_by_a["results"]}
    assert admin_a.get(f"/api/activity/{row.pk}/").json()["changes"]["firmware"] == ["", "9"]
    assert admin_b.get(f"/api/activity/{row.pk}/").status_code == 404
    assert row.pk not in {r["id"] for r in admin_b.get("/api/activity/").json()["results"]}
    # Nobody can change it through the API.
    assert admin_a.delete(f"/api/activity/{row.pk}/").status_code == 405
    assert admin_a.patch(f"/api/activity/{row.pk}/", {"detail": "x"}).status_code == 405


def test_admin_cannot_edit_the_log(world):
    client = Client()
    client.force_login(world.superuser)
    row = ActivityLog.objects.create(action="test", username="x")
    page = client.get(f"/admin/accounts/activitylog/{row.pk}/change/")
    assert page.status_code == 200  # it can be viewed ...
    assert b'name="_save"' not in page.content  # ... but not saved
    assert client.post(f"/admin/accounts/activitylog/{row.pk}/delete/").status_code == 403


def test_activity_page_is_searchable_and_scoped(world):
    ActivityLog.objects.create(
        action="update", username="x", organisation=world.org_a, object_repr="NA-thing"
    )
    ActivityLog.objects.create(
        action="update", username="y", organisation=world.org_b, object_repr="SB-thing"
    )
    client = Client()
    client.force_login(world.operator_a)
    page = client.get("/activity/", {"q": "thing"})
    assert page.status_code == 200
    reprs = [row.object_repr for row in page.context["page_obj"]]
    assert reprs == ["NA-thing"]
