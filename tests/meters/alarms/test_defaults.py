"""Default alarm rules: every organisation gets them, through every door that creates one."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.actions import create_organisation
from accounts.models import ActivityLog, Organisation
from meters.alarms import engine as alarm_engine
from meters.alarms.defaults import DEFAULT_RULES, install_default_rules, missing_default_rules
from meters.alarms.engine import evaluate_events
from meters.alarms.events import EventKind
from meters.alarms.models import Alarm, AlarmRule
from meters.store import IntervalReading
from tests.meters.alarms.helpers import POWER_DOWN, events, make_rule

pytestmark = pytest.mark.django_db
KEYS = {rule.key for rule in DEFAULT_RULES}


def default_keys(org) -> set[str]:
    return set(AlarmRule.objects.filter(organisation=org).values_list("default_key", flat=True))


def test_created_through_the_api_the_organisation_has_the_default_rules(world):
    api = APIClient()
    api.force_authenticate(world.admin_a)
    answer = api.post(
        "/api/organisations/", {"name": "District 9", "code": "d9", "parent": world.org_a.pk}
    )
    assert answer.status_code == 201, answer.content
    created = Organisation.objects.get(code="d9")
    assert answer.json()["id"] == created.pk
    assert default_keys(created) == KEYS
    assert ActivityLog.objects.filter(action="install_default_alarm_rules", user=world.admin_a)
    assert ActivityLog.objects.filter(action="create", object_id=str(created.pk)).exists()


def test_created_in_the_admin_the_organisation_has_the_default_rules(world):
    web = Client()
    web.force_login(world.admin_a)
    page = web.post(
        "/admin/accounts/organisation/add/",
        {"name": "District 7", "code": "d7", "parent": world.org_a.pk},
    )
    assert page.status_code == 302, page.content.decode()[:2000]
    assert default_keys(Organisation.objects.get(code="d7")) == KEYS


def test_out_of_scope_creation_is_refused_and_leaves_no_rules(world):
    api = APIClient()
    api.force_authenticate(world.admin_a)
    answer = api.post(
        "/api/organisations/", {"name": "Root", "code": "root2", "parent": None}, format="json"
    )
    assert answer.status_code in (400, 403)
    assert not Organisation.objects.filter(code="root2").exists()
    assert not AlarmRule.objects.exists()


def test_installing_twice_adds_nothing_and_covered_kinds_are_left_out(world):
    make_rule(world.utility, kinds=[EventKind.POWER_FAILURE])  # by hand, whole subtree
    org = create_organisation(Organisation(name="District 3", code="d3", parent=world.org_a))
    assert default_keys(org) == KEYS - {"power_failure"}  # the utility's rule covers it
    assert install_default_rules(org) == []
    assert missing_default_rules(AlarmRule.objects, org) == []


def test_a_meter_is_counted_once_however_many_organisations_have_default_rules(world):
    for org in (world.utility, world.org_a, world.org_b):
        install_default_rules(org)
    meter = world.grid_a.meters[0]
    (alarm,) = evaluate_events(events(meter, POWER_DOWN))
    assert alarm.rule.organisation == world.org_a  # the meter's own organisation's rule
    assert Alarm.objects.count() == 1


def test_consumption_after_a_disconnection_is_found_in_the_profile_at_once(world, settings):
    settings.TIME_ZONE = "UTC"
    make_rule(world.org_a, kinds=[EventKind.CONSUMPTION_WHILE_DISCONNECTED])
    meter, other = world.grid_a.meters
    at = datetime(2026, 6, 5, 9, 0, tzinfo=UTC)
    events(meter, 61, start=at)  # remote disconnection
    events(other, 61, start=at)
    channel = meter.meter_model.channels.get(obis="1-0:1.29.0*255")
    column = f"v{channel.profile_column}"

    def interval(m, minutes, value):
        IntervalReading.objects.create(
            meter=m, group=channel.profile_group, ts=at + timedelta(minutes=minutes),
            **{column: value},
        )  # fmt: skip

    interval(meter, 15, 40)  # within the grace: the relay may not have opened yet
    interval(meter, 45, 0)
    interval(meter, 60, 120)  # consumed after the relay opened
    interval(other, 15, 40)
    interval(other, 60, 0)
    found = alarm_engine.derive_consumption_while_disconnected(now=at + timedelta(hours=2))
    (alarm,) = evaluate_events(found)
    assert alarm.meter == meter and alarm.first_event_at == at + timedelta(minutes=60)
