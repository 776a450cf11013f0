"""`/api/load-schedules/` and the schedule pages: preview (slots, overlaps) before saving,
an overlap not yet seen is 409, scope and roles."""

from __future__ import annotations

from datetime import date, time

import pytest
from django.test import Client
from rest_framework.test import APIClient

from loadcontrol import schedules
from loadcontrol.models import LoadSchedule, ScheduleState

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _ask(world, **extra) -> dict:
    return {
        "name": "Evening peak",
        "node": world.grid_a.transformer.pk,
        "starts_on": "2030-10-26",
        "at": "18:00",
        "duration_minutes": 240,
        "recurrence": "daily",
        "until": "2030-10-28",
        "reason": "peak shaving",
        **extra,
    }


def test_preview_then_create_with_overlaps_seen(world, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    operator = api(world.operator_a)
    first = operator.post("/api/load-schedules/", _ask(world), format="json")
    assert first.status_code == 201, first.content
    assert first.json()["state"] == "active" and first.json()["time_zone"] == "Europe/Berlin"
    ask = _ask(world, name="Late", at="21:00", recurrence="once")
    shown = operator.post("/api/load-schedules/preview/", ask, format="json").json()
    assert shown["slots"] == [
        {"starts_at": "2030-10-26T19:00:00Z", "ends_at": "2030-10-26T23:00:00Z"}
    ]
    (overlap,) = shown["overlaps"]
    assert overlap["name"] == "Evening peak" and overlap["meters"] == 2
    assert overlap["spans"] == [
        {"starts_at": "2030-10-26T19:00:00Z", "ends_at": "2030-10-26T20:00:00Z"}
    ]
    unseen = operator.post("/api/load-schedules/", ask, format="json")
    assert unseen.status_code == 409 and unseen.json()["overlaps"]
    assert LoadSchedule.objects.count() == 1
    seen = operator.post("/api/load-schedules/", {**ask, "overlaps_seen": True}, format="json")
    assert seen.status_code == 201
    url = f"/api/load-schedules/{seen.json()['id']}/"
    assert api(world.operator_b).get(url).status_code == 404
    assert api(world.operator_b).post(url + "cancel/").status_code == 404
    assert api(world.readonly_a).post(url + "cancel/").status_code == 403
    assert operator.post(url + "cancel/").json()["state"] == "cancelled"
    assert operator.post(url + "cancel/").status_code == 409
    assert operator.get(url + "slots/").status_code == 200


def test_a_large_schedule_is_listed_and_approved_by_another(world, settings):
    settings.AMI_COMMAND_APPROVAL_THRESHOLD = 1
    made = api(world.operator_a).post("/api/load-schedules/", _ask(world), format="json")
    assert made.status_code == 201 and made.json()["state"] == "pending"
    url = f"/api/load-schedules/{made.json()['id']}/"
    assert api(world.operator_a).post(url + "approve/").status_code == 403  # its author
    assert api(world.readonly_a).post(url + "approve/").status_code == 403
    assert api(world.operator_b).post(url + "approve/").status_code == 404
    approved = api(world.admin_a).post(url + "approve/")
    assert approved.status_code == 200 and approved.json()["approved_by"] == "admin-a"
    assert api(world.admin_a).post(url + "approve/").status_code == 409
    listed = api(world.operator_a).get("/api/load-schedules/", {"state": "active"}).json()
    assert [row["id"] for row in listed["results"]] == [made.json()["id"]]
    assert api(world.operator_b).get("/api/load-schedules/").json()["results"] == []


def test_bad_schedules_are_refused(world):
    operator = api(world.operator_a)
    for extra, field in (
        ({"recurrence": "weekly"}, "weekdays"),
        ({"until": "2030-10-01"}, "until"),
        ({"duration_minutes": 0}, "duration_minutes"),
        ({"node": world.grid_b.region.pk}, "node"),
        ({"reason": ""}, "reason"),
        ({"at": "25:00"}, "at"),
    ):
        answer = operator.post("/api/load-schedules/", _ask(world, **extra), format="json")
        assert answer.status_code == 400 and field in answer.json(), (extra, answer.json())
    analyst = api(world.readonly_a).post("/api/load-schedules/", _ask(world), format="json")
    assert analyst.status_code == 403
    assert not LoadSchedule.objects.exists()


def test_the_schedule_form_previews_before_saving(world, settings):
    settings.AMI_COMMAND_APPROVAL_THRESHOLD = 1
    browser = Client()
    browser.force_login(world.operator_a)
    form = {
        "name": "Peak", "serials": " ".join(m.serial for m in world.grid_a.meters),
        "starts_on": "2030-10-26", "at": "18:00", "duration_minutes": "120",
        "recurrence": "weekly", "weekdays": ["5", "6"], "reason": "peak",
    }  # fmt: skip
    shown = browser.post("/load-schedules/new/", form).content.decode()
    assert 'id="schedule-preview"' in shown and 'id="schedule-no-overlap"' in shown
    assert not LoadSchedule.objects.exists()
    foreign = browser.post(
        "/load-schedules/new/", {**form, "serials": world.grid_b.meters[0].serial}
    ).content.decode()
    assert "no such meter" in foreign
    saved = browser.post("/load-schedules/new/", {**form, "save": "yes"})
    schedule = LoadSchedule.objects.get()
    assert saved.status_code == 302 and schedule.state == ScheduleState.PENDING
    assert schedule.weekdays == [5, 6] and schedule.at == time(18, 0)
    page = browser.get(saved["Location"]).content.decode()
    assert 'id="schedule-approve"' not in page  # not its author
    admin = Client()
    admin.force_login(world.admin_a)
    admin.post(f"/load-schedules/{schedule.pk}/decide/", {"decision": "approve"})
    schedule.refresh_from_db()
    assert schedule.state == ScheduleState.ACTIVE
    schedules.plan(schedules.recurrence.local_start(date(2030, 10, 25), time(0), schedules.zone()))
    assert "Planned" in browser.get(saved["Location"]).content.decode()
    analyst = Client()
    analyst.force_login(world.readonly_a)
    assert analyst.get("/load-schedules/new/").status_code == 403


def test_a_customer_group_schedule_is_changed_with_its_overlaps_shown_again(world):
    for customer, code in zip(world.grid_a.customers, ("RES-1", "COM-1"), strict=True):
        customer.tariff_code = code
        customer.save()
    world.grid_b.customers[0].tariff_code = "RES-1"
    world.grid_b.customers[0].save()
    operator = api(world.operator_a)
    first = operator.post("/api/load-schedules/", _ask(world), format="json")
    assert first.status_code == 201
    ask = _ask(world, name="Residential", at="22:30", duration_minutes=60)
    del ask["node"]
    group = operator.post("/api/load-schedules/", {**ask, "tariff": "RES-1"}, format="json")
    assert group.status_code == 201, group.content
    body = group.json()
    home = world.grid_a.meters[0]  # the meter at RES-1's service point, not B's
    assert body["size"] == 1 and body["target"]["label"] == "customers on tariff RES-1"
    assert LoadSchedule.objects.get(pk=body["id"]).meter_ids == [home.pk]
    unknown = operator.post("/api/load-schedules/", {**ask, "tariff": "NONE"}, format="json")
    assert unknown.status_code == 400 and "tariff" in unknown.json()
    url = f"/api/load-schedules/{body['id']}/"
    moved = {**ask, "tariff": "RES-1", "at": "19:00"}
    unseen = operator.put(url, moved, format="json")
    assert unseen.status_code == 409 and unseen.json()["overlaps"][0]["name"] == "Evening peak"
    assert LoadSchedule.objects.get(pk=body["id"]).at == time(22, 30)
    assert api(world.operator_b).put(url, moved, format="json").status_code == 404
    assert api(world.readonly_a).put(url, moved, format="json").status_code == 403
    changed = operator.put(url, {**moved, "overlaps_seen": True}, format="json")
    assert changed.status_code == 200 and changed.json()["at"] == "19:00:00"
    assert operator.patch(url, {"at": "20:00"}, format="json").status_code == 405
    browser = Client()
    browser.force_login(world.operator_a)
    page = browser.get(f"/load-schedules/{body['id']}/edit/").content.decode()
    assert 'value="RES-1"' in page and "Change schedule" in page
    form = {
        "name": "Residential", "tariff": "RES-1", "starts_on": "2030-10-26", "at": "18:30",
        "duration_minutes": "30", "recurrence": "daily", "until": "2030-10-28", "reason": "x",
    }  # fmt: skip
    shown = browser.post(f"/load-schedules/{body['id']}/edit/", form).content.decode()
    assert 'id="schedule-overlaps"' in shown and "Evening peak" in shown  # shown again
    saved = browser.post(f"/load-schedules/{body['id']}/edit/", {**form, "save": "yes"})
    assert saved.status_code == 302
    assert LoadSchedule.objects.get(pk=body["id"]).at == time(18, 30)
    analyst = Client()
    analyst.force_login(world.readonly_a)
    assert analyst.get(f"/load-schedules/{body['id']}/edit/").status_code in (403, 404)
