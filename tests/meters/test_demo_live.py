"""The demo fleet raises every default alarm on its own, through the real paths.

The simulated fleet of `make run` (`simulate_meters --scenario demo`) runs on loopback with
the push listener in front of the demo database: scripted incidents are pushed (ciphered,
with the meters' own keys) and stored by `collection.handle_push` (Celery, eager), reads
go through the read-job path, and the periodic derivations run as the beat runs them. No
alarm, event or reading is written by the test itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collection import actions
from collection.models import ReadJob
from collection.simulators.incidents import DEMO_ROLES, demo_fleet
from meters.alarms.defaults import DEFAULT_RULES
from meters.alarms.engine import derive_events, outage_summary
from meters.alarms.events import EventKind
from meters.alarms.models import OPEN_STATES, Alarm, AlarmRule, AlarmState
from meters.demo import DEMO_METERS, SIM_FIRST_SERIAL, load_demo
from meters.models import CommStatus, ConcentratorEndpoint, Meter, MeterEndpoint
from meters.store import EventRecord
from tests.collection.push.test_listener import Harness

pytestmark = pytest.mark.slow
K = EventKind


class Clock:
    """The fleet's time: the wall clock, moved forward by the test (for the timetable only)."""

    def __init__(self) -> None:
        self.shift = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.shift


def serial(index: int) -> str:
    return str(SIM_FIRST_SERIAL + index)


def open_alarms(kind: str) -> set[str]:
    rows = Alarm.objects.filter(kind=kind, state__in=OPEN_STATES)
    return set(rows.values_list("meter__serial", flat=True))


@pytest.fixture
def live_demo(transactional_db, eager_celery):
    demo = load_demo()
    clock = Clock()
    anchor = clock().replace(microsecond=0)
    fleet = demo_fleet(DEMO_METERS, anchor, first_serial=SIM_FIRST_SERIAL)
    harness = Harness(fleet.meters, now=clock)
    _host, port = harness.fleet.listeners[0]
    MeterEndpoint.objects.update(port=port, timeout_s=2)
    ConcentratorEndpoint.objects.update(port=port)  # meters read through a concentrator
    harness.clock, harness.anchor, harness.demo = clock, anchor, demo
    yield harness
    harness.close()


def push_until(harness, seconds_after_anchor: float) -> list:
    """Move the fleet's clock and let it push what happened meanwhile; wait for storage."""
    harness.clock.shift = (
        harness.anchor + timedelta(seconds=seconds_after_anchor) - datetime.now(UTC)
    )
    frames = harness.server.stats["frames"]
    pushed = harness.run(harness.fleet.push_due())
    harness.settle(frames + len(pushed))
    return pushed


def read(meters, items, *, retries=1) -> None:
    org = meters[0].organisation
    job = ReadJob.objects.create(
        name=f"test read {items}", organisation=org, items=items, crontab="0 0 1 1 *",
        window_minutes=10, retries=retries, retry_backoff_s=0,
    )  # fmt: skip
    job.meters.set(meters)
    actions.start_run(job, kind="manual")  # eager: read before start_run returns


def test_demo_fleet_raises_every_default_alarm_through_push_and_reads(live_demo):
    harness = live_demo
    # Every organisation has the default rules, each for its own meters.
    for org in [harness.demo.utility, *harness.demo.regions.values()]:
        keys = set(AlarmRule.objects.filter(organisation=org).values_list("default_key", flat=True))
        assert keys == {rule.key for rule in DEFAULT_RULES}

    # Pushes: power down at +20 s (three meters of one transformer), cover at +40 s,
    # magnetic field at +50 s, voltage sag at +60 s. All ciphered with the meters' keys.
    pushed = push_until(harness, 70)
    assert sorted((s, code) for s, _at, code in pushed) == sorted(
        [(serial(i), 1) for i in (3, 4, 5)] + [(serial(7), 44), (serial(27), 42), (serial(10), 76)]
    )
    assert harness.server.stats["accepted"] == len(pushed)
    assert open_alarms(K.POWER_FAILURE) == {serial(i) for i in (3, 4, 5)}
    assert open_alarms(K.COVER_OPEN) == {serial(7)}
    assert open_alarms(K.MAGNETIC_TAMPER) == {serial(27)}
    assert open_alarms(K.VOLTAGE_SAG) == {serial(10)}
    admin = harness.demo.users["admin"]
    outages = outage_summary(admin)
    assert outages["meters_off"] == 3
    assert [(t["code"], t["off"], t["total"]) for t in outages["transformers"]] == [
        ("NS1F1T2", 3, 3)
    ]
    # A pushed event is the event log's entry: the same row a read of the log gives.
    power_down = EventRecord.objects.get(meter__serial=serial(3), code=1)
    assert power_down.log == "0-0:99.98.0*255"
    assert power_down.ts == harness.anchor + timedelta(seconds=20)

    # Half an hour later: power is back on that transformer (the outage closes), the South
    # meter's outage opens, the magnetic field and the sag ended.
    push_until(harness, 35 * 60 + 25)
    assert open_alarms(K.POWER_FAILURE) == {serial(30)}
    assert Alarm.objects.filter(
        kind=K.POWER_FAILURE, meter__serial=serial(3), state=AlarmState.CLEARED
    ).exists()
    assert open_alarms(K.MAGNETIC_TAMPER) == set() and open_alarms(K.VOLTAGE_SAG) == set()
    assert open_alarms(K.COVER_OPEN) == {serial(7)}  # closed only after two hours
    assert [t["code"] for t in outage_summary(admin)["transformers"]] == ["SS1F2T1"]

    # Reads of the event log store the same events once (no second alarm, count unchanged).
    harness.clock.shift = timedelta(0)
    cover = Alarm.objects.get(kind=K.COVER_OPEN)
    read(list(Meter.objects.filter(serial__in=[serial(7), serial(3)])), ["events"])
    assert Alarm.objects.filter(kind=K.COVER_OPEN).count() == 1
    cover.refresh_from_db()
    assert cover.count == 1

    # Reads: the drifting clock, the meter that never answers (three reads in a row),
    # the meter disconnected yesterday that still consumes; then the periodic derivation.
    read([Meter.objects.get(serial=serial(13))], ["clock"])
    silent = Meter.objects.get(serial=serial(20))
    MeterEndpoint.objects.filter(meter=silent).update(timeout_s=1)
    for _ in range(3):
        read([silent], ["clock"], retries=0)
    assert CommStatus.objects.get(meter=silent).consecutive_failures == 3
    read([Meter.objects.get(serial=serial(40))], ["events", "profile"])
    derive_events()
    assert open_alarms(K.CLOCK_DRIFT) == {serial(13)}
    assert open_alarms(K.METER_UNREACHABLE) == {serial(20)}
    assert open_alarms(K.CONSUMPTION_WHILE_DISCONNECTED) == {serial(40)}
    # One alarm per event and kind: no rule of the utility doubles a region's.
    for kind in (K.POWER_FAILURE, K.COVER_OPEN):
        assert (
            Alarm.objects.filter(
                kind=kind, meter__serial=serial(7 if kind == K.COVER_OPEN else 3)
            ).count()
            == 1
        )


def test_every_demo_role_is_a_meter_of_the_demo():
    roles = {role.index for role in DEMO_ROLES}
    assert max(roles) < DEMO_METERS and len(roles) == len(DEMO_ROLES)
