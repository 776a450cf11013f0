"""Portal outages: now (from the alarms) with an estimated restoration, planned work above
the home, and the customer's preferences, which the alarms' customer messages follow."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from django.utils import timezone

from meters.alarms.models import Alarm, NotificationDelivery
from meters.alarms.notifications import notify_customers_of_outage
from portal import outages
from portal.models import OutagePreference, PlannedOutage
from tests.meters.alarms.helpers import make_rule, raise_alarm
from tests.meters.test_pages import client_for

pytestmark = pytest.mark.django_db


def test_an_outage_now_with_the_default_then_the_usual_restoration(world, settings):
    make_rule(world.org_a)
    customer = world.grid_a.customers[0]
    now = timezone.now()
    alarm = raise_alarm(world.grid_a.meters[0], at=now - timedelta(minutes=10))
    found = outages.now_at(customer)
    assert found.outage.at_home and found.restoration == alarm.first_event_at + timedelta(hours=2)
    html = client_for(world.customer).get("/portal/outages/").content.decode()
    assert "Power is off at your address" in html and "Estimated restoration" in html
    # Three cleared outages on this transformer: 30, 60 and 90 minutes -> the median, 60.
    for minutes in (30, 60, 90):
        start = now - timedelta(days=5, minutes=minutes)
        Alarm.objects.create(
            rule=alarm.rule, meter=world.grid_a.meters[1], organisation=world.org_a,
            service_point=world.grid_a.meters[1].service_point, kind=alarm.kind,
            severity=alarm.severity, state="cleared", first_event_at=start,
            last_event_at=start, cleared_at=start + timedelta(minutes=minutes),
        )  # fmt: skip
    when, basis = outages.restoration(customer, alarm.first_event_at)
    assert when == alarm.first_event_at + timedelta(minutes=60) and "last 3 outages" in basis


def test_planned_work_above_the_home_only_and_its_end_is_the_restoration(world):
    now = timezone.now()
    work = PlannedOutage.objects.create(
        node=world.grid_a.feeder, starts_at=now + timedelta(days=1),
        ends_at=now + timedelta(days=1, hours=3), reason="Replacing the feeder's breaker",
    )  # fmt: skip
    PlannedOutage.objects.create(
        node=world.grid_b.feeder, starts_at=now + timedelta(days=1),
        ends_at=now + timedelta(days=1, hours=3), reason="South work",
    )  # fmt: skip
    PlannedOutage.objects.create(
        node=world.grid_a.feeder, starts_at=now - timedelta(days=2),
        ends_at=now - timedelta(days=1), reason="Old work",
    )  # fmt: skip
    assert work.organisation == world.org_a
    html = client_for(world.customer).get("/portal/outages/").content.decode()
    assert "Replacing the feeder" in html and "South work" not in html and "Old work" not in html
    work.starts_at = now - timedelta(minutes=5)
    work.save()
    when, basis = outages.restoration(world.grid_a.customers[0], now - timedelta(minutes=4))
    assert when == work.ends_at and "planned" in basis


def test_preferences_are_saved_and_checked(world):
    client = client_for(world.customer)
    response = client.post("/portal/outages/", {"by_email": "on", "quiet_start": "22:00"})
    assert response.status_code == 400 and "both ends" in response.content.decode()
    assert not OutagePreference.objects.exists()
    response = client.post(
        "/portal/outages/",
        {"by_email": "on", "planned": "on", "quiet_start": "22:00", "quiet_end": "06:30"},
    )
    assert response["Location"] == "/portal/outages/"
    pref = OutagePreference.objects.get(customer=world.grid_a.customers[0])
    assert not pref.by_sms and pref.by_email and pref.quiet_start == time(22)
    assert pref.quiet_at(time(23, 59)) and pref.quiet_at(time(3)) and not pref.quiet_at(time(6, 30))


def test_the_alarms_customer_messages_follow_the_preferences(world, settings):
    settings.AMI_NOTIFY_CUSTOMERS_OF_OUTAGES = True
    make_rule(world.org_a)
    mine, neighbour = world.grid_a.customers[:2]
    for customer in (mine, neighbour):
        customer.phone = f"+2782000000{customer.pk % 10}"
        customer.save()
    OutagePreference.objects.create(customer=mine, by_sms=False)  # e-mail only
    OutagePreference.objects.create(
        customer=neighbour, quiet_start=time(22), quiet_end=time(6)
    )  # quiet at night
    for meter in world.grid_a.meters[:2]:
        raise_alarm(meter)
    night = datetime(2026, 6, 1, 23, 30, tzinfo=UTC)  # the test zone is UTC
    notify_customers_of_outage(world.grid_a.region, now=night)
    sent = set(NotificationDelivery.objects.values_list("customer_id", "channel"))
    assert sent == {(mine.pk, "email")}
    notify_customers_of_outage(world.grid_a.region, now=night.replace(hour=9))
    sent = set(NotificationDelivery.objects.values_list("customer_id", "channel"))
    assert sent == {(mine.pk, "email"), (neighbour.pk, "email"), (neighbour.pk, "sms")}


def test_planned_work_is_told_ahead_by_preference_after_quiet_hours_and_once(
    world, settings, tmp_path
):
    import json

    from django.core import mail

    from meters.models import Customer
    from meters.store.days import local_zone
    from portal.models import NoticeState, PlannedOutageNotice

    settings.AMI_SMS_URL = f"file://{tmp_path}/sms.jsonl"
    from meters.models import GridNode

    quiet, no_planned = world.grid_a.customers[:2]
    point = GridNode.objects.create(
        kind="service_point", parent=world.grid_a.transformer, code="SP-3", name="3 Main St",
        organisation=world.org_a,
    )  # fmt: skip
    both = Customer.objects.create(
        account_number="A-ACC-3", name="Third", service_point=point, email="c3@a.example",
        phone="+27820000003", organisation=world.org_a,
    )  # fmt: skip
    OutagePreference.objects.create(customer=quiet, quiet_start=time(22), quiet_end=time(6))
    OutagePreference.objects.create(customer=no_planned, planned=False)
    late = datetime(2031, 3, 3, 23, 0, tzinfo=local_zone())  # 23:00 local: quiet hours
    work = PlannedOutage.objects.create(
        node=world.grid_a.feeder, starts_at=late + timedelta(days=2),
        ends_at=late + timedelta(days=2, hours=4), reason="Replacing the feeder's breaker.",
    )  # fmt: skip
    PlannedOutage.objects.create(
        node=world.grid_b.feeder, starts_at=late - timedelta(hours=1),
        ends_at=late + timedelta(hours=2), reason="Started already.",
    )  # fmt: skip
    assert outages.notify_planned(late) == 2
    told = set(PlannedOutageNotice.objects.values_list("customer_id", "channel"))
    assert (both.pk, "sms") in told and (both.pk, "email") in told
    assert not {c for c, _ in told} & {quiet.pk, no_planned.pk}
    assert not {c for c, _ in told} & {c.pk for c in world.grid_b.customers}
    texts = [json.loads(line) for line in (tmp_path / "sms.jsonl").read_text().splitlines()]
    assert texts == [{"to": "+27820000003", "text": PlannedOutageNotice.objects.get(
        customer=both, channel="sms").body}]  # fmt: skip
    assert "Planned power cut" in texts[0]["text"] and "Replacing" in texts[0]["text"]
    assert len(texts[0]["text"]) <= 160 and len(mail.outbox) == len(told) - 1
    assert outages.notify_planned(late + timedelta(minutes=15)) == 0  # still quiet, told once
    assert outages.notify_planned(late + timedelta(hours=7, minutes=5)) == 1  # 06:05: quiet over
    assert PlannedOutageNotice.objects.filter(customer=quiet).get().channel == "email"
    assert not PlannedOutageNotice.objects.filter(customer=no_planned).exists()
    assert PlannedOutageNotice.objects.exclude(state=NoticeState.SENT).count() == 0
    assert work.notices.count() == len(told) + 1


def test_a_planned_notice_that_cannot_be_sent_is_tried_again_then_failed(world, settings):
    from meters.models import Customer
    from portal.models import NoticeState, PlannedOutageNotice

    settings.AMI_SMS_URL = "http://127.0.0.1:9/send"  # nothing listens: unreachable
    customer = world.grid_a.customers[0]
    Customer.objects.filter(pk=customer.pk).update(phone="+27820000001", email="")
    OutagePreference.objects.create(customer=customer, by_email=False)
    now = timezone.now()
    PlannedOutage.objects.create(
        node=customer.service_point, starts_at=now + timedelta(days=1),
        ends_at=now + timedelta(days=1, hours=1), reason="Meter box work.",
    )  # fmt: skip
    for attempt in range(1, outages.NOTICE_ATTEMPTS + 1):
        assert outages.notify_planned(now + timedelta(minutes=attempt)) == 0
        notice = PlannedOutageNotice.objects.get(customer=customer)
        assert notice.attempts == attempt and "unreachable" in notice.last_error
    assert notice.state == NoticeState.FAILED
    assert outages.notify_planned(now + timedelta(hours=1)) == 0
    assert PlannedOutageNotice.objects.get(customer=customer).attempts == outages.NOTICE_ATTEMPTS


def test_a_changed_planned_outage_is_told_again_once_per_change_and_channel(
    world, settings, tmp_path
):
    """Moved in time, moved to another node, cancelled: each change told once per channel
    to those it concerns, by their preferences, after their quiet hours; the reason's
    wording alone is no change; a notice of a revision overtaken before it went is never
    sent."""
    import json

    from django.core import mail

    from meters.models import Customer
    from meters.store.days import local_zone
    from portal.models import NoticeState, PlannedOutageNotice

    settings.AMI_SMS_URL = f"file://{tmp_path}/sms.jsonl"
    first, second = world.grid_a.customers[:2]
    Customer.objects.filter(pk=first.pk).update(phone="+27820000001")
    OutagePreference.objects.create(customer=second, quiet_start=time(22), quiet_end=time(6))
    third = world.grid_b.customers[0]  # another organisation's grid: never told
    noon = datetime(2031, 3, 3, 12, 0, tzinfo=local_zone())
    work = PlannedOutage.objects.create(
        node=first.service_point, starts_at=noon + timedelta(days=2),
        ends_at=noon + timedelta(days=2, hours=4), reason="Meter box work.",
    )  # fmt: skip

    def texts():
        lines = (tmp_path / "sms.jsonl").read_text().splitlines()
        return [json.loads(line)["text"] for line in lines]

    def told(revision):
        return set(
            PlannedOutageNotice.objects.filter(revision=revision, state=NoticeState.SENT)
            .values_list("customer_id", "channel", "news")
        )  # fmt: skip

    assert outages.notify_planned(noon) == 2  # the first customer: e-mail and SMS
    assert told(1) == {(first.pk, "email", "first"), (first.pk, "sms", "first")}

    # the reason reworded: no change for the customers
    work.reason = "Meter box work (new seals)."
    work.save()
    assert work.revision == 1 and outages.notify_planned(noon + timedelta(minutes=15)) == 0

    # moved an hour later and widened to the transformer: the first customer is told the
    # new times, the second (never told) gets a first notice, after their quiet hours
    work.starts_at += timedelta(hours=1)
    work.node = world.grid_a.transformer
    work.save()
    assert work.revision == 2 and work.changed_at is not None
    late = noon + timedelta(hours=11)  # 23:00: the second customer's quiet hours
    assert outages.notify_planned(late) == 2
    assert told(2) == {(first.pk, "email", "changed"), (first.pk, "sms", "changed")}
    assert "CHANGED" in texts()[-1] and "13:00" in texts()[-1] and len(texts()[-1]) <= 160
    assert outages.notify_planned(late + timedelta(minutes=15)) == 0  # once per change
    assert outages.notify_planned(late + timedelta(hours=7, minutes=5)) == 1  # 06:05
    assert (second.pk, "email", "first") in told(2)
    assert mail.outbox[-1].to == [second.email] and "13:00" in mail.outbox[-1].body

    # narrowed to the second customer's home: the first is told it no longer cuts theirs
    morning = late + timedelta(hours=8)
    work.node = second.service_point
    work.save()
    assert outages.notify_planned(morning) == 3
    assert told(3) == {
        (first.pk, "email", "away"), (first.pk, "sms", "away"), (second.pk, "email", "changed"),
    }  # fmt: skip
    assert "no longer cuts" in texts()[-1]
    assert mail.outbox[-1].subject == "Planned power cut changed"

    # cancelled: only the second is told (the first already knows it is not cut)
    work.cancelled = True
    work.save()
    assert outages.notify_planned(morning + timedelta(minutes=15)) == 1
    assert told(4) == {(second.pk, "email", "cancelled")}
    assert mail.outbox[-1].subject == "Planned power cut cancelled"
    assert "CANCELLED" in mail.outbox[-1].body
    assert not outages.planned(second, morning).exists()  # the outages page drops it
    assert outages.notify_planned(morning + timedelta(minutes=30)) == 0
    assert not PlannedOutageNotice.objects.filter(customer=third).exists()
    sent = PlannedOutageNotice.objects.filter(state=NoticeState.SENT).count()
    assert len(mail.outbox) + len(texts()) == sent == 9


def test_a_notice_not_yet_sent_when_the_work_changes_is_superseded(world, settings):
    from meters.models import Customer
    from portal.models import NoticeState, PlannedOutageNotice

    settings.AMI_SMS_URL = "http://127.0.0.1:9/send"  # nothing listens: the SMS stays pending
    customer = world.grid_a.customers[0]
    Customer.objects.filter(pk=customer.pk).update(phone="+27820000001", email="")
    now = timezone.now()
    work = PlannedOutage.objects.create(
        node=customer.service_point, starts_at=now + timedelta(days=1),
        ends_at=now + timedelta(days=1, hours=1), reason="Meter box work.",
    )  # fmt: skip
    assert outages.notify_planned(now) == 0
    settings.AMI_SMS_URL = "file:///dev/null"  # the SMS gateway is back
    work.ends_at += timedelta(hours=1)
    work.save()
    assert outages.notify_planned(now + timedelta(minutes=15)) == 1
    old, new = PlannedOutageNotice.objects.order_by("revision")
    assert (old.state, old.attempts) == (NoticeState.SUPERSEDED, 1)
    # never told the first times, so the new revision is a first notice, not a change
    assert (new.revision, new.news, new.state) == (2, "first", NoticeState.SENT)
