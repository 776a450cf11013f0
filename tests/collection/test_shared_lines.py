"""Shared lines: meters of one bus or TCP-serial converter take turns, a job reads one line's
meters in one batch, and a dead line is ONE fault (one line row down, one alarm), not an
unreachable meter each. Several simulated Modbus units and IEC 62056-21 meters on loopback
lines, read through the normal job path."""

from __future__ import annotations

import asyncio

import pytest

from accounts.models import Organisation
from amisite.celery import app
from collection import actions
from collection.models import JobRun, ReadJob
from collection.reader import gather_gated
from collection.scheduling import line_batches
from collection.simulators.iec62056_21.server import Iec21Fleet
from collection.simulators.iec62056_21.server import make_meters as make_iec21
from collection.simulators.modbus.server import ModbusFleet
from collection.simulators.modbus.server import make_meters as make_modbus
from collection.targets import line_for, lines_of
from meters.alarms.engine import derive_unreachable, evaluate_events
from meters.alarms.events import EventKind
from meters.alarms.models import OPEN_STATES, Alarm, AlarmRule
from meters.choices import ChannelKind, MeterStatus, Protocol, Transport
from meters.models import Channel, CommLine, CommStatus, Meter, MeterModel
from meters.store import RegisterRead
from tests.collection.fleet import away_from_a_quarter_hour, fleet_thread

ENERGY = ("1-0:1.8.0*255", "1-0:2.8.0*255")


def test_a_lines_meters_stay_in_one_batch():
    lines = {1: "a", 2: "b", 3: "a", 5: "a", 6: "b", 8: "c"}
    batches = line_batches(list(range(1, 11)), lines, 3)
    assert sorted(pk for batch in batches for pk in batch) == list(range(1, 11))
    for line in "abc":
        holding = [b for b in batches if any(lines.get(pk) == line for pk in b)]
        assert len(holding) == 1, (line, batches)
    # A line longer than a batch is a batch of its own, whole.
    long = {pk: "bus" for pk in range(1, 8)}
    assert line_batches(list(range(1, 10)), long, 3) == [[1, 2, 3, 4, 5, 6, 7], [8, 9]]
    assert line_batches([1, 2, 3], {}, 2) == [[1, 2], [3]]


def test_which_meters_share_a_line():
    tcp = {"transport": Transport.TCP, "host": "10.0.0.5", "port": 502, "serial_url": ""}
    modbus = line_for(protocol=Protocol.MODBUS, options={}, concentrator_id=None, **tcp)
    assert modbus == "tcp://10.0.0.5:502"  # a Modbus gateway: its units take turns
    iec21 = line_for(
        protocol=Protocol.IEC62056_21,
        transport=Transport.SERIAL,
        host="",
        port=None,
        serial_url="socket://10.0.0.6:4001?timeout=2",
        options={},
        concentrator_id=None,
    )
    assert iec21 == "socket://10.0.0.6:4001"
    # DLMS over TCP (WRAPPER): every association has its own connection; no turns ...
    assert line_for(protocol=Protocol.DLMS, options={}, concentrator_id=None, **tcp) is None
    # ... but HDLC through a converter is one line, and a concentrator is always one.
    hdlc = {"dlms_interface": "hdlc"}
    assert line_for(protocol=Protocol.DLMS, options=hdlc, concentrator_id=None, **tcp)
    assert (
        line_for(
            protocol=Protocol.DLMS,
            transport=Transport.CONCENTRATOR,
            host="",
            port=None,
            serial_url="",
            options={},
            concentrator_id=7,
        )
        == "concentrator:7"
    )


def test_a_line_waits_without_holding_a_slot_others_need():
    """Five meters on one bus and three on their own, two sessions at once: the bus never
    has two at once, and the three alone are not kept waiting behind the bus."""
    active: dict[str, int] = {}
    peak: dict[str, int] = {}
    finished = []

    async def run(item):
        line, name = item
        key = line or name
        active[key] = active.get(key, 0) + 1
        peak[key] = max(peak.get(key, 0), active[key])
        await asyncio.sleep(0.02)
        active[key] -= 1
        finished.append(name)
        return name

    items = [("bus", f"b{i}") for i in range(5)] + [(None, f"x{i}") for i in range(3)]
    result = asyncio.run(gather_gated(items, run, line_of=lambda i: i[0], concurrency=2))
    assert result == [name for _, name in items]
    assert peak["bus"] == 1
    # The meters alone finished while the bus was still busy (not after all five).
    assert max(finished.index(f"x{i}") for i in range(3)) < finished.index("b4")


@pytest.fixture
def eager_celery():
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def _model(org, protocol, name) -> MeterModel:
    model = MeterModel.objects.create(
        manufacturer="Simulated", name=name, protocol=protocol, organisation=org
    )
    for obis in ENERGY:
        Channel.objects.create(
            meter_model=model, obis=obis, name=obis, unit="Wh", kind=ChannelKind.REGISTER
        )
    return model


def _run(job) -> JobRun:
    return JobRun.objects.get(pk=actions.start_run(job).pk)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_meters_on_shared_lines_take_turns_and_a_dead_line_is_one_fault(eager_celery):
    org = Organisation.objects.create(name="Lines", code="lines")
    AlarmRule.objects.create(
        name="comm", organisation=org, kinds=[EventKind.LINE_DOWN, EventKind.METER_UNREACHABLE]
    )
    modbus_model = _model(org, Protocol.MODBUS, "SDM630")
    iec21_model = _model(org, Protocol.IEC62056_21, "SIM21")
    units = make_modbus(4, "sdm630")
    iec21 = make_iec21(3)
    away_from_a_quarter_hour()
    with (
        fleet_thread(units, fleet_class=ModbusFleet) as bus,
        fleet_thread(iec21, fleet_class=Iec21Fleet) as converter,
    ):
        for s in units:
            Meter.objects.create(
                serial=s.serial,
                meter_model=modbus_model,
                organisation=org,
                status=MeterStatus.ACTIVE,
                protocol=Protocol.MODBUS,
                host=bus.host,
                port=bus.port,
                modbus_unit_id=s.unit_id,
                timeout_s=1,
                retries=0,
            )
        for s in iec21:
            Meter.objects.create(
                serial=s.serial,
                meter_model=iec21_model,
                organisation=org,
                status=MeterStatus.ACTIVE,
                protocol=Protocol.IEC62056_21,
                host=converter.host,
                port=converter.port,
                iec21_address=s.address,
                timeout_s=1,
                retries=0,
            )
        ids = list(Meter.objects.filter(organisation=org).values_list("pk", flat=True))
        assert set(lines_of(ids).values()) == {bus.url, converter.url}
        job = ReadJob.objects.create(
            name="lines",
            organisation=org,
            items=["registers"],
            batch_size=2,  # smaller than either line: each line is still one batch
            concurrency=50,
            retries=0,
            retry_backoff_s=0,
        )
        run = _run(job)
        assert (run.status, run.succeeded) == ("succeeded", 7)
        assert converter.peak_connections == 1  # three meters, one session at a time
        assert bus.peak_connections == 1
        assert RegisterRead.objects.filter(meter__organisation=org).count() == 7 * len(ENERGY)
        lines = {line.key: line for line in CommLine.objects.all()}
        assert set(lines) == {bus.url, converter.url}
        assert lines[bus.url].meters == 4 and lines[bus.url].state == "up"
        port = bus.port
    # Both converters are gone now: the Modbus one is killed for good.
    for _ in range(3):
        run = _run(job)
        assert (run.status, run.failed) == ("failed", 7)
    results = {r.meter.serial: r for r in run.results.select_related("meter")}
    kinds = sorted(results[s.serial].error_kind for s in units)
    # One meter found the line dead; the other three were not tried at all.
    assert kinds[-3:] == ["LineDown"] * 3 and kinds[0] in ("ConnectionFailed", "MeterTimeout")
    assert all("line" in results[s.serial].notes for s in units)
    line = CommLine.objects.get(key=bus.url)
    assert (line.state, line.consecutive_failures) == ("down", 3)
    assert line.last_error
    # Their own failure counts are untouched: no meter becomes unreachable, no meter alarm.
    assert not CommStatus.objects.filter(meter__organisation=org, consecutive_failures__gt=0)
    evaluate_events(derive_unreachable())
    open_alarms = Alarm.objects.filter(organisation=org, state__in=OPEN_STATES)
    assert sorted((a.kind, a.line.key) for a in open_alarms) == sorted(
        [(EventKind.LINE_DOWN, bus.url), (EventKind.LINE_DOWN, converter.url)]
    )
    modbus_alarm = open_alarms.get(line__key=bus.url)
    assert modbus_alarm.meter is None and modbus_alarm.count == 3  # one alarm, three runs
    # The converter comes back on its address: the line is up, its alarm cleared.
    with fleet_thread(units, fleet_class=ModbusFleet, port=port):
        run = _run(job)
    assert run.succeeded == 4
    line.refresh_from_db()
    assert (line.state, line.consecutive_failures, line.down_since) == ("up", 0, None)
    modbus_alarm.refresh_from_db()
    assert modbus_alarm.state == "cleared"
