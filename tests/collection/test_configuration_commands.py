"""Configuration commands through the queue against the DLMS simulator over loopback: each one
is confirmed only by what the meter reads back, and the read-back is kept as the meter's actual
configuration; bad parameters queue nothing; a meter that refuses or a connection cut in the
middle of a command leaves the right record.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from django.utils import timezone

from collection.commands import actions as commands
from collection.commands.kinds import BadCommand
from collection.models import CommandState, MeterCommand
from collection.simulators.dlms_fleet import DlmsFleet, Fault, make_meters
from meters.models import ActualConfiguration
from tests.collection.test_command_queue import point_meter_at

pytestmark = pytest.mark.django_db(transaction=True)

LIMITER = {
    "threshold": "7000",
    "emergency_threshold": "2500",
    "min_over_s": 60,
    "min_under_s": 600,
    "emergency_profile": {"id": 3, "activation": "2030-01-01T18:00:00+00:00", "duration_s": 7200},
    "emergency_groups": [3],
    "reconnect_count": 2,
    "lockout_s": 3600,
}
TOU = {
    "name": "TOU-2031",
    "seasons": [{"name": "ALL", "start": "2031-01-01", "week": "WK"}],
    "weeks": [{"name": "WK", "days": [1, 1, 1, 1, 1, 2, 2]}],
    "days": [
        {"id": 1, "actions": [{"start": "00:00", "tariff": 2}, {"start": "07:00", "tariff": 1}]},
        {"id": 2, "actions": [{"start": "00:00", "tariff": 2}]},
    ],
    "special_days": [{"index": 0, "date": "12-25", "day_id": 2}],
    "activate_at": "2031-01-01T00:00:00+00:00",
}
CLOCK = {
    "time_zone_minutes": -60,
    "dst_enabled": True,
    "dst_begin": {"month": 3, "day": -1, "weekday": 7, "hour": 2, "minute": 0},
    "dst_end": {"month": 10, "day": -1, "weekday": 7, "hour": 3, "minute": 0},
    "dst_deviation_minutes": 60,
}

COMMUNICATION = {
    "apn": "m2m.utility.example",
    "connection_mode": "wake_up",
    "listen_port": 4060,
    "inactivity_timeout_s": 300,
    "use_dhcp": True,
}
FIXED_ADDRESS = {
    "use_dhcp": False,
    "ip_address": "10.20.30.40",
    "subnet_mask": "255.255.255.0",
    "gateway": "10.20.30.1",
}


@pytest.fixture
def fleet():
    meters = make_meters(3)
    meters[1].fault = Fault("timeout")
    meters[2].fault = Fault("reset", at_reply=3)  # cut once, in the middle of a command
    with DlmsFleet(meters, interface="wrapper").running_in_thread() as running:
        yield running


@pytest.fixture
def no_backoff(settings):
    settings.AMI_COMMAND_RETRY_BACKOFF_S = 0


def _actual(meter, section):
    return ActualConfiguration.objects.get(meter=meter, section=section)


@pytest.mark.parametrize(
    ("kind", "section", "parameters"),
    [
        ("set_limiter", "limiter", LIMITER),
        ("write_tou", "tou", TOU),
        ("set_clock_settings", "clock", CLOCK),
        ("configure_profile", "profile", {"period_s": 1800, "channels": ["1-0:1.29.0*255"]}),
        ("set_push_destination", "push", {"destination": "10.1.2.3:4059"}),
        ("set_communication", "communication", COMMUNICATION),
        ("set_communication", "communication", {**COMMUNICATION, **FIXED_ADDRESS}),
        ("set_alarm_filters", "alarms", {"filter_1": 0xFFFF0FFB, "filter_2": 0}),
    ],
)
def test_each_configuration_command_is_confirmed_by_its_read_back(
    world, fleet, eager_celery, kind, section, parameters
):
    meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
    command = commands.queue_command(
        meter, kind, acting_user=world.engineer_a, parameters=parameters
    )
    command.refresh_from_db()
    assert command.state == CommandState.CONFIRMED, command.error
    assert command.answer["section"] == section
    actual = _actual(meter, section)
    assert actual.value == command.answer["actual"] and actual.command_id == command.pk
    if section == "tou":  # waiting in the passive calendar for its date
        assert actual.value["passive"]["name"] == "TOU-2031"
        assert actual.value["activate_at"] == TOU["activate_at"]
        assert actual.value["special_days"] == TOU["special_days"]
    elif section == "limiter":
        assert {k: actual.value[k] for k in LIMITER} == LIMITER
    elif section == "communication" and parameters["use_dhcp"]:
        # the address in use is the one the network gave; it is read back, not compared
        assert actual.value == {
            **command.parameters,
            "ip_address": actual.value["ip_address"],
            "subnet_mask": "255.255.255.0",
        }
        assert actual.value["ip_address"].startswith("10.64.")
        state = fleet.state_of("90000001").communication
        assert state["apn"] == b"m2m.utility.example" and state["mode"] == 104
    elif section == "alarms":
        assert actual.value == {**parameters, "register_1": 0, "register_2": 0}
        assert fleet.state_of("90000001").alarm_filters == [0xFFFF0FFB, 0]
    else:
        assert actual.value == command.parameters


def test_read_configuration_keeps_every_section(world, fleet, eager_celery):
    meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
    command = commands.queue_command(meter, "read_configuration", acting_user=world.engineer_a)
    command.refresh_from_db()
    assert command.state == CommandState.CONFIRMED, command.error
    assert command.answer["unsupported"] == []
    kept = dict(ActualConfiguration.objects.filter(meter=meter).values_list("section", "value"))
    assert set(kept) == {"limiter", "tou", "profile", "push", "clock", "communication", "alarms"}
    assert kept["profile"] == {
        "period_s": 900,
        "channels": ["1-0:1.29.0*255", "1-0:2.29.0*255", "1-0:3.29.0*255", "1-0:4.29.0*255"],
    }
    assert kept["tou"]["active"]["name"] == "SIM-TOU1"


def test_bad_parameters_queue_nothing(world):
    meter = world.grid_a.meters[0]
    bad = [
        ("set_limiter", {"threshold": "-5"}),
        ("set_limiter", {"min_over_s": 5}),  # no threshold
        ("write_tou", {**TOU, "weeks": [{"name": "WK", "days": [1, 1, 1]}]}),
        ("write_tou", {**TOU, "special_days": [{"index": 0, "date": "02-30", "day_id": 2}]}),
        ("configure_profile", {"period_s": 90, "channels": ["1-0:1.29.0*255"]}),
        ("configure_profile", {"period_s": 900, "channels": ["not-obis"]}),
        ("set_push_destination", {"destination": "nowhere"}),
        ("set_clock_settings", {**CLOCK, "dst_begin": None}),
        ("read_configuration", {"sections": ["firmware"]}),
        ("set_communication", {**COMMUNICATION, "apn": "bad apn"}),
        ("set_communication", {**COMMUNICATION, "connection_mode": "sometimes"}),
        ("set_communication", {**COMMUNICATION, "ip_address": "10.0.0.5"}),  # DHCP gives it
        ("set_communication", {**COMMUNICATION, **FIXED_ADDRESS, "subnet_mask": "255.0.255.0"}),
        ("set_communication", {**COMMUNICATION, **FIXED_ADDRESS, "ip_address": "10.0.0.300"}),
        ("set_communication", {**COMMUNICATION, "use_dhcp": False}),  # no address then
        ("set_alarm_filters", {"filter_1": 2**32, "filter_2": 0}),
        ("set_alarm_filters", {"filter_1": "0xZZ", "filter_2": 0}),
        ("set_alarm_filters", {"filter_1": 1, "mask": 0}),
    ]
    for kind, parameters in bad:
        with pytest.raises(BadCommand):
            commands.queue_command(meter, kind, acting_user=world.engineer_a, parameters=parameters)
    assert not MeterCommand.objects.exists()


def test_a_value_the_meter_refuses_fails_at_once_and_changes_nothing(world, fleet, eager_celery):
    """Whole minutes pass the head-end's check, but the simulated meter keeps 15-minute steps."""
    meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
    command = commands.queue_command(
        meter,
        "configure_profile",
        acting_user=world.engineer_a,
        parameters={"period_s": 600, "channels": ["1-0:1.29.0*255"]},
    )
    command.refresh_from_db()
    assert command.state == CommandState.FAILED and command.attempts == 1
    assert command.error_kind
    assert not ActualConfiguration.objects.filter(meter=meter).exists()
    read = commands.queue_command(meter, "read_configuration", acting_user=world.engineer_a)
    read.refresh_from_db()
    assert read.answer["sections"]["profile"]["period_s"] == 900  # as it was


def test_a_connection_cut_mid_command_is_retried_and_confirmed(world, fleet, settings):
    """The meter resets the connection at its third reply (in the middle of the limiter's
    writes): the command goes back to the queue as retryable; the next session writes it
    whole and reads it back."""
    settings.AMI_COMMAND_RETRY_BACKOFF_S = 60
    meter = point_meter_at(world.grid_a.meters[1], fleet, "90000003")
    command = MeterCommand.objects.create(
        organisation=meter.organisation,
        meter=meter,
        kind="set_limiter",
        parameters=LIMITER,
        requested_by=world.engineer_a,
        expires_at=timezone.now() + timedelta(hours=1),
    )
    first = commands.execute_commands(meter.pk, claim="task-1")
    command.refresh_from_db()
    assert first["retrying"] == 1
    assert command.state == CommandState.QUEUED and command.attempts == 1, command.error
    assert not ActualConfiguration.objects.filter(meter=meter).exists()
    assert command.not_before > timezone.now()  # backing off
    fleet.meter("90000003").fault = None  # the line is back, and the backoff is over:
    MeterCommand.objects.filter(pk=command.pk).update(not_before=timezone.now())
    commands.execute_commands(meter.pk, claim="task-2")
    command.refresh_from_db()
    assert command.state == CommandState.CONFIRMED, command.error
    assert command.attempts == 2
    assert _actual(meter, "limiter").value["threshold"] == "7000"


def test_a_silent_meter_fails_and_keeps_no_read_back(world, fleet, eager_celery, no_backoff):
    meter = point_meter_at(world.grid_a.meters[1], fleet, "90000002")
    meter.timeout_s = 1
    meter.save()
    command = commands.queue_command(
        meter,
        "write_tou",
        acting_user=world.engineer_a,
        parameters=TOU,
        max_attempts=2,
    )
    command.refresh_from_db()
    assert command.state == CommandState.FAILED and command.attempts == 2
    assert not ActualConfiguration.objects.filter(meter=meter).exists()


def test_a_redelivered_configuration_command_only_reads_back(world, fleet):
    meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
    command = MeterCommand.objects.create(
        organisation=meter.organisation,
        meter=meter,
        kind="set_push_destination",
        parameters={"destination": "10.9.9.9:4059"},
        requested_by=world.engineer_a,
        expires_at=timezone.now() + timedelta(hours=1),
    )
    commands._claim(meter.pk, "task-1")  # claimed, then the worker died before sending
    commands.execute_commands(meter.pk, claim="task-1")
    command.refresh_from_db()
    # Only read back: the meter never got the destination, so the command is not confirmed.
    assert command.state == CommandState.FAILED and command.error_kind == "NotConfirmed"
    assert _actual(meter, "push").value == {"destination": ""}


def test_an_alarm_the_filter_masks_out_is_neither_registered_nor_pushed(world, fleet, eager_celery):
    """Alarm filter 1 sent through the queue: the simulated meter then drops the alarms it
    masks out (no push at all) and registers only the bits it lets through."""
    meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
    command = commands.queue_command(
        meter,
        "set_alarm_filters",
        acting_user=world.engineer_a,
        parameters={"filter_1": "0xFFFFFFFE", "filter_2": "0xFFFFFFFF"},  # bit 0 masked out
    )
    command.refresh_from_db()
    assert command.state == CommandState.CONFIRMED, command.error
    received = []

    async def listen_and_push():
        async def take(reader, writer):
            received.append(await reader.read(4096))
            writer.close()

        server = await asyncio.start_server(take, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            masked = await fleet.push_alarm("90000001", alarm=0b1, destination=f"127.0.0.1:{port}")
            through = await fleet.push_alarm(
                "90000001", alarm=0b101, destination=f"127.0.0.1:{port}"
            )
            await asyncio.sleep(0.2)
        return masked, through

    masked, through = asyncio.run(listen_and_push())
    assert masked == b"" and fleet.filtered_alarms == 1
    assert through and received == [through]
    assert fleet.state_of("90000001").alarm == 0b100  # only the bit the filter lets through
    read = commands.queue_command(
        meter,
        "read_configuration",
        acting_user=world.engineer_a,
        parameters={"sections": ["alarms"]},
    )
    read.refresh_from_db()
    assert read.answer["sections"]["alarms"]["register_1"] == 0b100
