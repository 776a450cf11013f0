"""Configuration management: desired configuration per meter model and meter, the drift
report, re-apply through the queue against the simulator, and who may do what."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ActivityLog
from collection.models import CommandState, MeterCommand
from collection.simulators.dlms_fleet import DlmsFleet, make_meters
from loadcontrol import configuration, drift
from loadcontrol.actions import NotAllowed
from meters import configuration as config
from meters.models import ActualConfiguration, DesiredConfiguration
from tests.collection.test_command_queue import point_meter_at

pytestmark = pytest.mark.django_db(transaction=True)

LIMITER = {
    "threshold": "6000",
    "min_over_s": 60,
    "min_under_s": 300,
    "reconnect_count": 1,
    "lockout_s": 900,
}
PUSH = {"destination": "10.0.0.9:4060"}


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _states(meter) -> dict:
    return {s.section: s for s in drift.states_of([meter])[meter.pk]}


def test_desired_values_are_checked_and_only_engineers_in_scope_set_them(world):
    meter_a, meter_b = world.grid_a.meters[0], world.grid_b.meters[0]
    with pytest.raises(config.ConfigError):
        configuration.set_desired(
            meter_a, "limiter", {"threshold": "x"}, acting_user=world.engineer_a
        )
    with pytest.raises(NotAllowed):
        configuration.set_desired(meter_a, "limiter", LIMITER, acting_user=world.operator_a)
    with pytest.raises(NotAllowed):
        configuration.set_desired(meter_b, "limiter", LIMITER, acting_user=world.engineer_a)
    # The model belongs to the utility: its desired configuration is the utility's to set.
    with pytest.raises(NotAllowed):
        configuration.set_desired(world.meter_model, "push", PUSH, acting_user=world.engineer_a)
    assert not DesiredConfiguration.objects.exists()
    row = configuration.set_desired(meter_a, "limiter", LIMITER, acting_user=world.engineer_a)
    assert row.value["threshold"] == "6000" and row.value["emergency_profile"] is None
    assert row.organisation_id == meter_a.organisation_id
    assert ActivityLog.objects.filter(action="set_desired_configuration").count() == 1


def test_a_meter_overrides_its_model_and_states_follow_the_read_back(world):
    meter, other = world.grid_a.meters
    configuration.set_desired(world.meter_model, "push", PUSH, acting_user=world.superuser)
    own = {"destination": "10.0.0.1:4060"}
    configuration.set_desired(meter, "push", own, acting_user=world.engineer_a)
    assert _states(meter)["push"].desired == own and _states(meter)["push"].source == "meter"
    assert _states(other)["push"].desired == PUSH and _states(other)["push"].source == "model"
    assert _states(meter)["push"].state == drift.UNREAD
    assert _states(meter)["limiter"].state == ""  # not managed
    ActualConfiguration.objects.create(
        meter=meter, section="push", value=PUSH, read_at=timezone.now()
    )
    assert _states(meter)["push"].state == drift.DIFFERS
    ActualConfiguration.objects.filter(meter=meter).update(value=own)
    assert _states(meter)["push"].state == drift.IN_STEP
    configuration.clear_desired(meter, "push", acting_user=world.engineer_a)
    assert _states(meter)["push"].state == drift.DIFFERS  # the model's again
    rows = drift.drift_report([meter, other], state="drifting")
    assert [m for m, _s in rows] == [meter, other]


def test_reapply_sends_only_what_drifted_and_the_read_back_puts_it_in_step(world, eager_celery):
    with DlmsFleet(make_meters(2), interface="wrapper").running_in_thread() as fleet:
        meters = [
            point_meter_at(world.grid_a.meters[0], fleet, "90000001"),
            point_meter_at(world.grid_a.meters[1], fleet, "90000002"),
        ]
        for meter in meters:
            configuration.set_desired(meter, "limiter", LIMITER, acting_user=world.engineer_a)
            configuration.set_desired(meter, "push", PUSH, acting_user=world.engineer_a)
        ActualConfiguration.objects.create(
            meter=meters[1], section="push", value=PUSH, read_at=timezone.now()
        )
        queued = configuration.reapply(meters, acting_user=world.engineer_a, reason="audit fix")
        assert queued == 3  # two limiters, one push (the second meter's push is in step)
        assert fleet.state_of("90000001").limiter.normal == 6000
        assert fleet.state_of("90000002").limiter.lockout_s == 900
        assert fleet.state_of("90000001").push_destination == "10.0.0.9:4060"
    commands = MeterCommand.objects.all()
    assert {c.state for c in commands} == {CommandState.CONFIRMED}, [c.error for c in commands]
    assert {c.reason for c in commands} == {"audit fix"}
    for meter in meters:
        assert {s.state for s in drift.states_of([meter])[meter.pk] if s.state} == {drift.IN_STEP}
    assert configuration.reapply(meters, acting_user=world.engineer_a) == 0  # nothing drifts


def test_drift_report_page_filters_and_confirms_before_sending(world, eager_celery):
    meter = world.grid_a.meters[0]
    configuration.set_desired(meter, "push", PUSH, acting_user=world.engineer_a)
    engineer = browser(world.engineer_a)
    page = engineer.get("/configuration/?state=drifting")
    assert page.status_code == 200
    text = page.content.decode()
    assert meter.serial in text and world.grid_a.meters[1].serial not in text
    assert world.grid_b.meters[0].serial not in text
    assert 'id="reapply"' in text
    assert meter.serial not in engineer.get("/configuration/?state=in_step").content.decode()
    asked = engineer.post("/configuration/", {"action": "reapply", "pick": [meter.pk]})
    assert asked.status_code == 200 and 'id="confirm"' in asked.content.decode()
    assert not MeterCommand.objects.exists()  # nothing until confirmed
    done = engineer.post(
        "/configuration/",
        {"action": "reapply", "pick": [meter.pk], "confirmed": "yes", "reason": "drift"},
    )
    assert done.status_code == 302
    command = MeterCommand.objects.get()
    assert command.kind == "set_push_destination" and command.parameters == PUSH
    # Another organisation's meter cannot be slipped into the selection.
    engineer.post(
        "/configuration/",
        {"action": "reapply", "pick": [world.grid_b.meters[0].pk], "confirmed": "yes"},
    )
    assert MeterCommand.objects.count() == 1


def test_who_sees_and_who_changes(world):
    meter = world.grid_a.meters[0]
    analyst = browser(world.readonly_a)
    text = analyst.get("/configuration/").content.decode()
    assert 'id="reapply"' not in text
    url = f"/meters/{meter.serial}/configuration/"
    assert analyst.get(url).status_code == 200
    form = {"section": "push", "op": "save", "push-destination": "10.0.0.9:4060"}
    assert analyst.post(url, form).status_code == 403
    assert browser(world.operator_a).post(url, form).status_code == 403
    assert browser(world.customer).get("/configuration/").status_code == 403
    assert browser(world.engineer_b).get(url).status_code == 404
    assert not DesiredConfiguration.objects.exists()
    engineer = browser(world.engineer_a)
    bad = engineer.post(url, {**form, "push-destination": "no-port"})
    assert bad.status_code == 200 and "host:port" in bad.content.decode()
    assert not DesiredConfiguration.objects.exists()
    assert engineer.post(url, form).status_code == 302
    assert DesiredConfiguration.objects.get().value == PUSH


def test_tou_and_limiter_forms_round_trip(world):
    meter = world.grid_a.meters[0]
    engineer = browser(world.engineer_a)
    url = f"/meters/{meter.serial}/configuration/"
    calendar = (
        "name WINTER\nday 1 00:00=2 07:00=1 23:00=2\nday 2 00:00=2\n"
        "week WK 1 1 1 1 1 2 2\nseason ALL 2025-01-01 WK\nspecial 12-25 2\nspecial 2026-04-03 2"
    )
    done = engineer.post(
        url,
        {
            "section": "tou",
            "op": "save",
            "tou-calendar": calendar,
            "tou-activate_at": "2026-01-01T00:00",
        },
    )
    assert done.status_code == 302, done.content.decode()[:2000]
    value = DesiredConfiguration.objects.get(section="tou").value
    assert value["special_days"] == [
        {"index": 0, "date": "12-25", "day_id": 2},
        {"index": 1, "date": "2026-04-03", "day_id": 2},
    ]
    assert value["activate_at"].startswith("2026-01-01T")
    assert config.tou_text(value) == calendar
    bad = engineer.post(
        url, {"section": "tou", "op": "save", "tou-calendar": "week WK 1 1 1 1 1 1 9\n"}
    )
    assert bad.status_code == 200
    assert DesiredConfiguration.objects.get(section="tou").value == value  # unchanged
    engineer.post(
        url,
        {
            "section": "limiter",
            "op": "save",
            "limiter-threshold": "5000",
            "limiter-min_over_s": "60",
            "limiter-min_under_s": "300",
            "limiter-reconnect_count": "2",
            "limiter-lockout_s": "0",
            "limiter-emergency_id": "4",
            "limiter-emergency_duration_s": "3600",
            "limiter-emergency_threshold": "1500",
            "limiter-emergency_groups": "4, 5",
        },
    )
    limiter = DesiredConfiguration.objects.get(section="limiter").value
    assert limiter["emergency_profile"] == {"id": 4, "activation": None, "duration_s": 3600}
    assert limiter["emergency_groups"] == [4, 5] and limiter["lockout_s"] == 0
    page = engineer.get(url).content.decode()
    assert 'id="limits"' in page and "The meter" in page and "The head-end" in page
    assert 'id="meter-configuration"' in engineer.get(f"/meters/{meter.serial}/").content.decode()


def test_communication_and_alarm_filter_forms_round_trip(world):
    meter = world.grid_a.meters[0]
    engineer = browser(world.engineer_a)
    url = f"/meters/{meter.serial}/configuration/"
    fields = {
        "section": "communication",
        "op": "save",
        "communication-apn": "m2m.example",
        "communication-connection_mode": "always_on",
        "communication-listen_port": "4059",
        "communication-inactivity_timeout_s": "120",
        "communication-use_dhcp": "on",
        "communication-ip_address": "10.1.1.1",  # DHCP assigns it: refused
    }
    bad = engineer.post(url, fields)
    assert bad.status_code == 200 and "ip_address: is assigned by DHCP" in bad.content.decode()
    assert not DesiredConfiguration.objects.exists()
    del fields["communication-use_dhcp"]
    fields |= {"communication-subnet_mask": "255.255.0.0"}
    assert engineer.post(url, fields).status_code == 302
    value = DesiredConfiguration.objects.get(section="communication").value
    assert value == {
        "apn": "m2m.example",
        "connection_mode": "always_on",
        "listen_port": 4059,
        "inactivity_timeout_s": 120,
        "use_dhcp": False,
        "ip_address": "10.1.1.1",
        "subnet_mask": "255.255.0.0",
        "gateway": None,
    }
    alarms = {"section": "alarms", "op": "save", "alarms-filter_1": "0xFFFF00FF"}
    assert engineer.post(url, {**alarms, "alarms-filter_2": "0x1_0000_0000"}).status_code == 200
    assert engineer.post(url, {**alarms, "alarms-filter_2": "255"}).status_code == 302
    kept = DesiredConfiguration.objects.get(section="alarms").value
    assert kept == {"filter_1": 0xFFFF00FF, "filter_2": 255}
    page = engineer.get(url).content.decode()
    assert 'value="0xFFFF00FF"' in page and 'value="0x000000FF"' in page
    assert 'value="10.1.1.1"' in page


def test_actual_configuration_api_is_scoped_and_read_only(world):
    from tests.api_matrix import client_for

    mine, theirs = world.grid_a.meters[0], world.grid_b.meters[0]
    for meter in (mine, theirs):
        ActualConfiguration.objects.create(
            meter=meter, section="push", value=PUSH, read_at=timezone.now()
        )
    listed = client_for(world.readonly_a).get("/api/actual-configurations/").json()["results"]
    assert [row["meter"] for row in listed] == [mine.pk]
    foreign = ActualConfiguration.objects.get(meter=theirs)
    assert (
        client_for(world.engineer_a).get(f"/api/actual-configurations/{foreign.pk}/").status_code
        == 404
    )
    own = ActualConfiguration.objects.get(meter=mine)
    answer = client_for(world.engineer_a).patch(
        f"/api/actual-configurations/{own.pk}/", {"value": {}}, format="json"
    )
    assert answer.status_code == 405
    assert client_for(world.customer).get("/api/actual-configurations/").status_code == 403
    # The desired configuration API checks the value and the target's scope.
    engineer = client_for(world.engineer_a)
    bad = engineer.post(
        "/api/desired-configurations/",
        {"meter": mine.pk, "section": "push", "value": {"destination": "x"}},
        format="json",
    )
    assert bad.status_code == 400 and "value" in bad.json()
    shared = engineer.post(
        "/api/desired-configurations/",
        {"meter_model": world.meter_model.pk, "section": "push", "value": PUSH},
        format="json",
    )
    assert shared.status_code in (400, 403)  # the utility's model is not engineer A's to set
    assert not DesiredConfiguration.objects.exists()


def test_desired_configuration_api_refuses_a_row_without_its_target(world):
    """Found by the fuzzer: neither meter nor model was a 500 (a message without a field)."""
    from tests.api_matrix import client_for

    engineer = client_for(world.engineer_a)
    answer = engineer.post(
        "/api/desired-configurations/", {"section": "tou", "value": 0.01}, format="json"
    )
    assert answer.status_code == 400 and "meter" in answer.json()
    both = engineer.post(
        "/api/desired-configurations/",
        {
            "section": "push",
            "value": PUSH,
            "meter": world.grid_a.meters[0].pk,
            "meter_model": world.meter_model.pk,
        },
        format="json",
    )
    assert both.status_code in (400, 403)
    assert not DesiredConfiguration.objects.exists()


def test_drift_api_is_scoped_and_reapply_queues_commands_after_the_count(world):
    from tests.api_matrix import client_for

    mine, other_mine = world.grid_a.meters
    theirs = world.grid_b.meters[0]
    configuration.set_desired(mine, "push", PUSH, acting_user=world.engineer_a)
    configuration.set_desired(other_mine, "limiter", LIMITER, acting_user=world.engineer_a)
    configuration.set_desired(theirs, "push", PUSH, acting_user=world.engineer_b)
    ActualConfiguration.objects.create(
        meter=other_mine, section="limiter", value=LIMITER, read_at=timezone.now()
    )
    engineer = client_for(world.engineer_a)
    listed = engineer.get("/api/configuration-drift/", {"state": "drifting"}).json()
    assert [row["serial"] for row in listed["results"]] == [mine.serial]
    assert listed["results"][0]["sections"] == [
        {
            "section": "push",
            "state": "unread",
            "source": "meter",
            "desired": PUSH,
            "actual": None,
            "read_at": None,
        }
    ]
    every = engineer.get("/api/configuration-drift/").json()["results"]
    assert {row["serial"] for row in every} == {mine.serial, other_mine.serial}
    in_step = engineer.get("/api/configuration-drift/", {"section": "limiter", "state": "in_step"})
    assert [row["serial"] for row in in_step.json()["results"]] == [other_mine.serial]
    assert client_for(world.readonly_a).get("/api/configuration-drift/").status_code == 200
    assert client_for(world.customer).get("/api/configuration-drift/").status_code == 403
    url = "/api/configuration-drift/reapply/"
    asked = engineer.post(url, {"meters": [mine.pk, other_mine.pk]}, format="json")
    assert asked.status_code == 409
    assert asked.json()["count"] == 2 and asked.json()["commands"] == 1  # the limiter is in step
    assert not MeterCommand.objects.exists()
    # Another organisation's meter is "no such meter"; roles that may not configure get 403.
    foreign = engineer.post(url, {"meters": [theirs.pk], "count": 1}, format="json")
    assert foreign.status_code == 400 and "no such meter" in str(foreign.json())
    for user in (world.operator_a, world.readonly_a, world.customer):
        refused = client_for(user).post(url, {"meters": [mine.pk], "count": 1}, format="json")
        assert refused.status_code == 403, user
    bad = engineer.post(url, {"meters": [mine.pk], "sections": ["firmware"], "count": 1})
    assert bad.status_code == 400
    assert not MeterCommand.objects.exists()
    done = engineer.post(
        url,
        {"node": world.grid_a.feeder.pk, "count": 2, "reason": "drift audit"},
        format="json",
    )
    assert done.status_code == 202, done.content
    assert done.json() == {"count": 2, "commands": 1}
    command = MeterCommand.objects.get()
    assert (command.meter_id, command.kind, command.parameters) == (
        mine.pk,
        "set_push_destination",
        PUSH,
    )
    assert command.reason == "drift audit" and command.requested_by == world.engineer_a
    log = ActivityLog.objects.get(action="reapply_configuration")
    assert log.changes["commands"] == 1 and log.changes["target"].endswith("and below")
    # A command pending: the section is no longer drifting, so nothing is queued twice.
    again = engineer.post(url, {"meters": [mine.pk], "count": 1}, format="json")
    assert again.status_code == 202 and again.json()["commands"] == 0


def test_drift_filters_ignore_ids_that_are_no_ids(world):
    from tests.api_matrix import client_for

    configuration.set_desired(world.grid_a.meters[0], "push", PUSH, acting_user=world.engineer_a)
    for value in ("99999999999999999999999", "١٢", "-1", "x"):
        for name in ("model", "grid"):
            answer = client_for(world.engineer_a).get("/api/configuration-drift/", {name: value})
            assert answer.status_code == 200 and answer.json()["count"] == 1, (name, value)
            assert (
                browser(world.engineer_a).get("/configuration/", {name: value}).status_code == 200
            )


@pytest.mark.parametrize("drift_s", [None, 3, 45])
def test_clock_drift_comes_from_the_meters_comm_status_when_read_with_it(world, drift_s):
    """The meter page reads its meter with its comm status: the clock-sync state takes the
    drift from it (one statement less) and is the same as when it is asked for."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from meters.models import CommStatus, Meter

    meter = world.grid_a.meters[0]
    configuration.set_desired(
        meter, config.CLOCK_SYNC, {"max_drift_s": 10}, acting_user=world.engineer_a
    )
    if drift_s is not None:
        CommStatus.objects.create(meter=meter, clock_drift_s=drift_s)
    plain = Meter.objects.get(pk=meter.pk)
    with_status = Meter.objects.select_related("comm_status").get(pk=meter.pk)
    with CaptureQueriesContext(connection) as asked:
        asked_states = drift.states_of([plain])[meter.pk]
    with CaptureQueriesContext(connection) as known:
        known_states = drift.states_of([with_status])[meter.pk]
    assert known_states == asked_states
    clock = {s.section: s for s in known_states}[config.CLOCK_SYNC]
    expected = {None: drift.UNREAD, 3: drift.IN_STEP, 45: drift.DIFFERS}[drift_s]
    assert clock.state == expected
    assert len(known.captured_queries) == len(asked.captured_queries) - 1
    assert not [q for q in known.captured_queries if "collection_commstatus" in q["sql"]]
