import asyncio
import json
import threading

import pytest

from collection.protocols.cli import main

from .conftest import NOW

pytestmark = [pytest.mark.timeout(60)]


class FleetThread:
    """Run a simulated fleet in a background event loop (the CLI owns its own loop)."""

    def __init__(self, meters, interface="wrapper"):
        self.meters = meters
        self.interface = interface
        self.ready = threading.Event()
        self.loop = None
        self.address = None

    def __enter__(self):
        from collection.simulators.dlms_fleet import DlmsFleet

        async def serve():
            self.stop = asyncio.Event()
            async with DlmsFleet(self.meters, interface=self.interface, now=lambda: NOW) as f:
                self.address = f.address_of(self.meters[0].serial)
                self.ready.set()
                await self.stop.wait()

        def target():
            self.loop = asyncio.new_event_loop()
            self.loop.run_until_complete(serve())

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)


@pytest.mark.parametrize("auth", ["none", "high"])
def test_cli_reads_json(capsys, auth):
    from collection.simulators.dlms_fleet import SimulatedMeter

    meter = SimulatedMeter(serial="90000001")
    with FleetThread([meter], "hdlc") as fleet:
        host, port, sa = fleet.address
        argv = [
            "--protocol",
            "dlms",
            "--url",
            f"tcp://{host}:{port}",
            "--interface",
            "hdlc",
            "--server-address",
            str(sa),
            "--physical-address",
            "17",
            "--auth",
            auth,
            "--what",
            "clock,registers,profile,events,instantaneous,relay",
            "--since",
            "2024-03-14T12:00:00Z",
            "--until",
            "2024-03-15T12:00:00Z",
            "--json",
            "--timeout",
            "3",
        ]
        if auth == "high":
            argv += [
                "--auth-key",
                meter.auth_key.hex(),
                "--block-key",
                meter.block_key.hex(),
                "--system-title",
                b"HEADEND1".hex(),
            ]
        assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["clock"]["meter_time"] == "2024-03-15T12:07:30Z"
    assert isinstance(out["registers"][0]["value"], str)
    assert len(out["profile"]["rows"]) == 97  # [since, until] inclusive, aligned
    assert out["profile"]["rows"][0]["timestamp"].endswith("Z")
    assert out["relay"] == {"connected": True, "control_state": "connected"}


def test_cli_connection_refused(capsys):
    async def free_port():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return port

    port = asyncio.run(free_port())
    assert main(["--url", f"tcp://127.0.0.1:{port}", "--what", "clock", "--timeout", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ConnectionFailed" in err[0]


def test_cli_timeout_and_auth_errors(capsys):
    from collection.simulators.dlms_fleet import Fault, SimulatedMeter

    with FleetThread([SimulatedMeter(serial="1", fault=Fault("timeout"))]) as fleet:
        host, port, sa = fleet.address
        rc = main(["--url", f"tcp://{host}:{port}", "--what", "clock", "--timeout", "0.3"])
    assert rc == 2
    assert "MeterTimeout" in capsys.readouterr().err
    with FleetThread([SimulatedMeter(serial="2")]) as fleet:
        host, port, sa = fleet.address
        rc = main(
            [
                "--url",
                f"tcp://{host}:{port}",
                "--auth",
                "low",
                "--password",
                "nope",
                "--what",
                "clock",
                "--timeout",
                "2",
            ]
        )
    assert rc == 2
    assert "AuthenticationFailed" in capsys.readouterr().err


def test_cli_bad_arguments(capsys):
    assert main(["--url", "tcp://127.0.0.1:1", "--auth", "high", "--what", "clock"]) == 2
    assert "invalid argument" in capsys.readouterr().err
