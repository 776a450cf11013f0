"""`read_meter` and `simulate_meters` as field engineers run them."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accounts.models import ActivityLog
from collection.simulators.dlms_fleet import DlmsFleet, make_meters
from tests.collection.test_on_demand import point_meter_at

ROOT = Path(__file__).resolve().parents[2]


def run_read_meter(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        call_command_argv = ["manage.py", "read_meter", *args]
        from collection.management.commands.read_meter import Command

        Command().run_from_argv(call_command_argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.mark.django_db(transaction=True)
def test_read_registered_meter_by_serial(world, capsys):
    with DlmsFleet(make_meters(1), interface="wrapper").running_in_thread() as fleet:
        point_meter_at(world.grid_a.meters[0], fleet, "90000001")
        code, out, err = run_read_meter(["90000001", "--what", "clock,registers,relay"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert {"clock", "registers", "relay"} <= set(data)
    assert "secret" not in out
    assert ActivityLog.objects.filter(action="read_meter", object_repr="90000001").exists()


@pytest.mark.django_db
def test_unknown_serial_is_one_clear_line(world, capsys):
    code, out, err = run_read_meter(["NOPE", "--what", "clock"], capsys)
    assert code == 2 and err.strip() == "read_meter: no meter with serial 'NOPE'"


def test_read_unregistered_meter_by_url_with_hls(capsys):
    meters = make_meters(1)
    meter = meters[0]
    with DlmsFleet(meters, interface="hdlc").running_in_thread() as fleet:
        address = fleet.address_of(meter.serial)
        args = [
            "--url",
            f"tcp://{address.host}:{address.port}",
            "--interface",
            "hdlc",
            "--server-address",
            str(address.server_address),
            "--auth",
            "high",
            "--auth-key",
            meter.auth_key.hex(),
            "--block-key",
            meter.block_key.hex(),
            "--system-title",
            "4142434445464748",
            "--what",
            "clock,profile",
            "--json",
        ]
        from collection.protocols import cli

        code = cli.main(args)
    out = capsys.readouterr().out
    assert code == 0
    assert len(json.loads(out)["profile"]["rows"]) == 96


def test_read_meter_by_url_needs_no_secrets_and_no_database():
    """A field engineer's laptop: no SECRET_KEY, no AMI_SECRETS_KEY, no database."""
    drop = {"SECRET_KEY", "AMI_SECRETS_KEY", "DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    env = {key: value for key, value in os.environ.items() if key not in drop}
    with DlmsFleet(make_meters(1), interface="wrapper").running_in_thread() as fleet:
        address = fleet.address_of("90000001")
        url = f"tcp://{address.host}:{address.port}"
        result = subprocess.run(
            [sys.executable, "manage.py", "read_meter", "--url", url, "--what", "clock,registers"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"clock", "registers"} <= set(data)


def test_simulate_meters_command_serves_until_interrupted(tmp_path):
    manifest = tmp_path / "meters.json"
    env = {**os.environ, "SECRET_KEY": "x", "DJANGO_SETTINGS_MODULE": "amisite.settings"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "simulate_meters",
            "--protocol",
            "dlms",
            "--count",
            "5",
            "--manifest",
            str(manifest),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "127.0.0.1" in line and "meters 5" in line
        deadline = time.monotonic() + 10
        meters = None
        while meters is None and time.monotonic() < deadline:
            try:  # the file appears before it is completely written
                meters = json.loads(manifest.read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                time.sleep(0.05)
        assert len(meters) == 5 and meters[0]["host"] == "127.0.0.1"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) is not None
