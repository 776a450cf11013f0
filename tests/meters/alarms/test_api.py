"""Alarm API and pages: scoped lists and filters, acknowledge/clear, outages, delivery log."""

from datetime import timedelta

import pytest
from django.test import Client

from accounts.models import ActivityLog
from meters.alarms.engine import evaluate_events
from meters.alarms.events import EventKind, describe
from meters.alarms.models import AlarmState, DeliveryChannel, NotificationDelivery
from tests.api_matrix import client_for
from tests.meters.alarms.helpers import (
    COVER,
    MAGNET,
    POWER_DOWN,
    T0,
    events,
    make_rule,
    make_subscription,
    raise_alarm,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def alarms(world):
    make_rule(world.utility, kinds=["power_failure", "magnetic_tamper"])
    a0, a1 = world.grid_a.meters
    evaluate_events(events(a0, POWER_DOWN) + events(a1, MAGNET, n=5))
    evaluate_events(events(world.grid_b.meters[0], POWER_DOWN))
    return world


def test_alarm_list_is_scoped_and_filtered(alarms):
    w = alarms
    api = client_for(w.operator_a)
    rows = api.get("/api/alarms/").json()["results"]
    assert {r["meter_serial"] for r in rows} == {m.serial for m in w.grid_a.meters}
    assert api.get("/api/alarms/", {"kind": "magnetic_tamper"}).json()["count"] == 1
    tamper = api.get("/api/alarms/", {"kind": "magnetic_tamper"}).json()["results"][0]
    assert tamper["count"] == 5
    assert api.get("/api/alarms/", {"state": "cleared"}).json()["count"] == 0
    assert api.get("/api/alarms/", {"severity": 30}).json()["count"] == 2
    assert api.get("/api/alarms/", {"meter": w.grid_a.meters[0].pk}).json()["count"] == 1
    node = w.grid_a.service_points[1].pk
    assert api.get("/api/alarms/", {"grid_node": node}).json()["count"] == 1
    # Another organisation's node filters to nothing rather than revealing anything.
    assert api.get("/api/alarms/", {"grid_node": w.grid_b.feeder.pk}).json()["count"] == 0
    assert client_for(w.superuser).get("/api/alarms/").json()["count"] == 3
    assert client_for(w.customer).get("/api/alarms/").status_code == 403


def test_alarm_detail_other_organisation_404(alarms):
    w = alarms
    alarm_id = client_for(w.operator_a).get("/api/alarms/").json()["results"][0]["id"]
    assert client_for(w.operator_a).get(f"/api/alarms/{alarm_id}/").status_code == 200
    other = client_for(w.engineer_b)
    assert other.get(f"/api/alarms/{alarm_id}/").status_code == 404
    assert other.post(f"/api/alarms/{alarm_id}/acknowledge/").status_code == 404
    assert other.post(f"/api/alarms/{alarm_id}/clear/").status_code == 404


def test_acknowledge_and_clear_via_api(alarms):
    w = alarms
    alarm = raise_alarm(w.grid_a.meters[0], MAGNET, at=T0 + timedelta(hours=1))
    url = f"/api/alarms/{alarm.pk}/"
    # Read-only users may look, not act (403, and the refusal is logged).
    assert client_for(w.readonly_a).post(url + "acknowledge/").status_code == 403
    engineer = client_for(w.engineer_a)
    done = engineer.post(url + "acknowledge/", {"comment": "on it"}, format="json")
    assert done.status_code == 200, done.content
    body = done.json()
    assert body["state"] == "acknowledged" and body["acknowledged_by"] == "engineer-a"
    assert engineer.post(url + "acknowledge/").status_code == 409
    done = engineer.post(url + "clear/", {"comment": "magnet removed"}, format="json")
    assert done.json()["state"] == "cleared" and done.json()["clear_comment"] == "magnet removed"
    actions = ActivityLog.objects.filter(object_id=str(alarm.pk)).values_list("action", flat=True)
    assert sorted(actions) == ["alarm_acknowledge", "alarm_clear"]


def test_outages_api(alarms):
    w = alarms
    data = client_for(w.operator_a).get("/api/alarms/outages/").json()
    assert data["meters_off"] == 1
    (tx,) = data["transformers"]
    assert (tx["code"], tx["off"], tx["total"]) == ("NA-T1", 1, 2)
    assert client_for(w.customer).get("/api/alarms/outages/").status_code == 403


def test_delivery_log_is_scoped(alarms):
    from meters.alarms.models import Alarm

    w = alarms
    rows = []
    for user, alarm in (
        (w.engineer_a, Alarm.objects.filter(organisation=w.org_a).first()),
        (w.engineer_b, Alarm.objects.get(organisation=w.org_b)),
    ):
        rows.append(
            NotificationDelivery.objects.create(
                alarm=alarm,
                subscription=make_subscription(user),
                user=user,
                organisation=alarm.organisation,
                channel=DeliveryChannel.EMAIL,
                recipient=f"{user.username}@example.invalid",
                body="x",
                created_at=T0,
            )
        )
    api = client_for(w.readonly_a)
    listed = api.get("/api/notification-deliveries/").json()["results"]
    assert [r["id"] for r in listed] == [rows[0].pk]
    assert api.get(f"/api/notification-deliveries/{rows[0].pk}/").status_code == 200
    assert api.get(f"/api/notification-deliveries/{rows[1].pk}/").status_code == 404
    assert client_for(w.admin_a).post("/api/notification-deliveries/", {}).status_code == 405


def test_subscriptions_are_own_only(world):
    mine = make_subscription(world.engineer_a)
    theirs = make_subscription(world.admin_a)
    api = client_for(world.engineer_a)
    assert [r["id"] for r in api.get("/api/alarm-subscriptions/").json()["results"]] == [mine.pk]
    assert api.get(f"/api/alarm-subscriptions/{theirs.pk}/").status_code == 404
    assert api.patch(f"/api/alarm-subscriptions/{theirs.pk}/", {"active": False}).status_code == 404


def test_pages_show_alarms_outages_and_transitions(alarms):
    w = alarms
    client = Client()
    client.force_login(w.engineer_a)
    page = client.get("/alarms/")
    assert page.status_code == 200
    html = page.content.decode()
    assert w.grid_a.meters[0].serial in html and w.grid_b.meters[0].serial not in html
    assert 'data-ws="/ws/alarms/"' in html and "js/alarms.js" in html
    assert "1 of 2" in html  # the outage table: NA-T1, one meter of two off
    outages = client.get("/alarms/outages/")
    assert outages.status_code == 200 and "NA-T1" in outages.content.decode()
    alarm = page.context["object_list"][0]
    response = client.post(f"/alarms/{alarm.pk}/acknowledge/", {"comment": "seen"})
    assert response.status_code == 302
    alarm.refresh_from_db()
    assert alarm.state == AlarmState.ACKNOWLEDGED
    other = Client()
    other.force_login(w.engineer_b)
    assert other.post(f"/alarms/{alarm.pk}/clear/").status_code == 404


def test_subscription_made_in_the_admin_is_your_own(world):
    from meters.alarms.models import AlarmSubscription

    client = Client()
    client.force_login(world.admin_a)
    response = client.post(
        "/admin/meters/alarmsubscription/add/",
        {
            "organisation": world.org_a.pk,
            "kinds": "[]",
            "min_severity": 30,
            "by_email": "on",
            "timezone": "UTC",
            "critical_overrides_quiet": "on",
            "active": "on",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    sub = AlarmSubscription.objects.get()
    assert sub.user == world.admin_a
    assert ActivityLog.objects.filter(action="create", object_id=str(sub.pk)).count() == 1


def test_alarms_name_their_latest_event(world):
    make_rule(world.org_a, kinds=[EventKind.COVER_OPEN, EventKind.TERMINAL_COVER_OPEN])
    raise_alarm(world.grid_a.meters[0], COVER)
    (row,) = client_for(world.operator_a).get("/api/alarms/").json()["results"]
    assert row["last_event"] == describe(COVER, "0-0:99.98.0*255").name
    page = Client()
    page.force_login(world.operator_a)
    assert f"last: {row['last_event']}" in page.get("/alarms/").content.decode()
