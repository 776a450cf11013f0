"""A listener that died between two of HAProxy's health checks costs no push.

deploy/haproxy-push.cfg in front of a listener that has just died (its port refuses; its
health check has not failed yet) and a live one; two simulated meters push every 0.15 s.
Every connection HAProxy sends to the dead listener is refused and handed, with the bytes
the meter sent, to the live one: every push arrives once and none is refused as a replay.

This is where last session's note placed the replays ("HAProxy waits about a second before
it retries"): HAProxy 2.6 with `option redispatch 1` retries a refused connection on the
other server at once (its log shows `+1` retries and no pause), so pushes arrive in order
here; the order the listener saw is printed. Out-of-order arrival from any cause is taken
by the replay window (tests/collection/push/test_handoff.py).
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

import pytest

from collection.push.senders import Sender, StaticDirectory
from collection.push.server import CounterSink, HealthServer, PushServer
from collection.simulators.dlms_fleet import DlmsFleet, make_meters
from tests.cluster.test_push_failover import _open, start_balancer
from tests.cluster.test_web_failover import HAPROXY, free_port, stop
from tests.services import IN_CI

pytestmark = [pytest.mark.slow]

if not os.path.exists(HAPROXY):
    if IN_CI:
        pytest.fail("haproxy is needed (apt-get install haproxy)")
    pytest.skip("haproxy not installed", allow_module_level=True)

METERS = make_meters(2, first_serial=93950001)
PUSHES = 12  # per meter
EVERY = 0.15  # seconds between one meter's pushes: well inside HAProxy's pause


def test_a_listener_dead_between_health_checks_costs_no_push(tmp_path):
    senders = [
        Sender(i + 1, s.serial, system_title=s.system_title, block_key=s.block_key,
               auth_key=s.auth_key)
        for i, s in enumerate(METERS)
    ]  # fmt: skip
    dead, lb = free_port(), free_port()
    sink = CounterSink(keep=1000)

    async def scenario() -> None:
        server = PushServer(StaticDirectory(senders), sink, flush_interval=60)
        _host, port = await server.start("127.0.0.1", 0)

        async def ok():
            return {"listener": "ok"}

        # Both health checks answer ok: listener 1 died after its last check.
        checks = [HealthServer(ok), HealthServer(ok)]
        health = [(await h.start("127.0.0.1", 0))[1] for h in checks]
        ports = {"push1": dead, "push2": port}
        balancer = await asyncio.to_thread(
            start_balancer,
            lb,
            ports,
            {"push1": health[0], "push2": health[1]},
            tmp_path / "haproxy.log",
        )
        fleet = DlmsFleet(METERS, push_to=f"127.0.0.1:{lb}")
        await fleet.start()
        try:
            await asyncio.sleep(2.5)  # HAProxy's first checks (rise 2): both in service

            async def meter(serial: str) -> None:
                for k in range(PUSHES):
                    when = datetime(2026, 6, 1, tzinfo=UTC) + timedelta(seconds=k)
                    await fleet.push_alarm(serial, alarm=0, ciphered=True, event_code=7, when=when)
                    await asyncio.sleep(EVERY)

            await asyncio.wait_for(asyncio.gather(*(meter(s.serial) for s in METERS)), 30)
            async with asyncio.timeout(10):
                while sink.pushes + server.stats["rejected"] < PUSHES * len(METERS):
                    await asyncio.sleep(0.05)
        finally:
            await fleet.close()
            await server.close()
            for h in checks:
                await h.close()
            stop(balancer)

        assert server.stats["rejected"] == 0, dict(server.stats)

    assert not _open(dead)
    asyncio.run(asyncio.wait_for(scenario(), 60))
    overtaken = 0
    for meter_id in (1, 2):
        order = [ic for m, _events, ic in sink.kept if m == meter_id]
        assert sorted(order) == list(range(1, PUSHES + 1)), order  # each once, none lost
        overtaken += sum(1 for a, b in zip(order, order[1:], strict=False) if a > b)
    print(
        f"{PUSHES * len(METERS)} pushes through a dead and a live listener, {overtaken} overtaken"
    )
