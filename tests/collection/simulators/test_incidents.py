"""Scripted incidents: a fixed timetable, the meter's event log, and pushes as they happen."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collection.protocols.dlms.push import (
    WrapperStream,
    events_of,
    open_envelope,
    parse_envelope,
    parse_notification,
)
from collection.simulators.dlms.meter import default_auth_key, default_block_key
from collection.simulators.incidents import (
    COVER_CLOSED,
    COVER_OPENED,
    POWER_DOWN,
    POWER_UP,
    Incident,
    Script,
    demo_fleet,
)

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_periodic_incident_repeats_and_ends_and_a_window_sees_each_event_once():
    outage = Incident(POWER_DOWN, 20, POWER_UP, duration_s=600, period_s=3600)
    script = Script(T0, (outage,))
    assert script.events(T0 - timedelta(days=1), at(2 * 3600 + 30)) == [
        (at(20), POWER_DOWN),
        (at(620), POWER_UP),
        (at(3620), POWER_DOWN),
        (at(4220), POWER_UP),
        (at(7220), POWER_DOWN),
    ]
    # An end inside the window whose start lies before it is still seen.
    assert script.events(at(3700), at(4300)) == [(at(4220), POWER_UP)]
    # Consecutive push windows (after, until] hand out each event exactly once.
    stops = [T0, at(19), at(20), at(500), at(3620), at(9000)]
    pushed = [e for a, b in zip(stops, stops[1:], strict=False) for e in script.pushes(a, b)]
    assert pushed == script.events(at(1), at(9000))
    with pytest.raises(ValueError):
        Incident(COVER_OPENED, 0, COVER_CLOSED, duration_s=7200, period_s=3600)


def test_a_past_one_off_incident_is_in_the_log_but_never_pushed():
    script = Script(T0, (Incident(61, -23 * 3600, push=False),))
    assert script.events(T0 - timedelta(days=1), T0) == [(at(-23 * 3600), 61)]
    assert script.pushes(T0 - timedelta(days=2), T0 + timedelta(days=1)) == []


def test_demo_fleet_gives_each_role_its_meter():
    fleet = demo_fleet(48, T0)
    scripted = {m.serial for m in fleet.meters if m.script is not None}
    assert {"90000004", "90000005", "90000006", "90000031", "90000008"} <= scripted
    assert fleet.meters[13].clock_drift_s == 420.0
    assert fleet.meters[20].fault.kind == "timeout"
    assert fleet.meters[40].script.relay_connected is False
    assert all(m.fault is None for i, m in enumerate(fleet.meters) if i != 20)


def test_simulate_meters_scenario_demo_pushes_the_outage_as_it_happens():
    """The command make run starts: the outage's last-gasp pushes reach the listener."""
    received: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(20)
    port = server.getsockname()[1]
    done = threading.Event()

    def accept():
        while len(received) < 3:
            try:
                conn, _ = server.accept()
            except OSError:
                break
            with conn:
                stream = WrapperStream()
                conn.settimeout(5)
                while chunk := conn.recv(4096):
                    received.extend(f.apdu for f in stream.feed(chunk))
        done.set()

    threading.Thread(target=accept, daemon=True).start()
    anchor = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=18)
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "collection.simulators.cli", "--count=48", "--scenario=demo",
            f"--scenario-anchor={anchor.isoformat()}", f"--push-to=127.0.0.1:{port}",
        ],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        assert proc.stdout.readline().startswith("dlms wrapper 127.0.0.1:")
        assert done.wait(30), f"{len(received)} pushes received"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        server.close()
    senders = {}
    for apdu in received:
        envelope = parse_envelope(apdu)
        serial = str(int.from_bytes(envelope.system_title[3:], "big"))
        plain = open_envelope(envelope, default_block_key(serial), default_auth_key(serial))
        (event,) = events_of(parse_notification(plain), datetime.now(UTC))
        senders[serial] = (event.code, event.timestamp, event.log)
    expected = (POWER_DOWN, anchor + timedelta(seconds=20), "0-0:99.98.0*255")
    assert senders == {s: expected for s in ("90000004", "90000005", "90000006")}


def test_a_push_the_listener_did_not_take_is_tried_again_later():
    """A head-end still starting misses nothing: the meter repeats the push (push setup)."""
    import asyncio

    from collection.simulators.dlms_fleet import PUSH_RETRY_DELAY_S, DlmsFleet, SimulatedMeter

    with socket.socket() as probe:  # a port nobody listens on (yet)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    now = [at(0)]
    meter = SimulatedMeter("90000004", script=Script(T0, (Incident(POWER_DOWN, 20),)))
    fleet = DlmsFleet([meter], now=lambda: now[0], push_to=f"127.0.0.1:{port}")
    received: list[bytes] = []

    async def main():
        async def take(reader, writer):
            received.append(await reader.read(4096))
            writer.close()

        await fleet.start()
        try:
            now[0] = at(25)
            assert await fleet.push_due() == []  # refused: kept for later
            now[0] = at(25 + PUSH_RETRY_DELAY_S / 2)
            server = await asyncio.start_server(take, "127.0.0.1", port)
            assert await fleet.push_due() == []  # not yet: the repetition delay
            now[0] = at(25 + PUSH_RETRY_DELAY_S)
            assert await fleet.push_due() == [("90000004", at(20), POWER_DOWN)]
            for _ in range(100):
                if received:
                    break
                await asyncio.sleep(0.02)
            server.close()
            assert await fleet.push_due() == [] and fleet.push_failures == 0
        finally:
            await fleet.close()

    asyncio.run(main())
    assert len(received) == 1
