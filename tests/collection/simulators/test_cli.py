"""The CLI core starts listeners, writes the manifest and stops on SIGTERM."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def simulate(*args: str) -> subprocess.Popen:
    """`simulate_meters` in a child process, its stdout a pipe."""
    command = [sys.executable, "-m", "collection.simulators.cli", *args]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=ENV)


def read_meter(*args: str) -> dict:
    """`read_meter` in a child process: its JSON (the exit code must be 0)."""
    out = subprocess.run(
        [sys.executable, "-m", "collection.protocols.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env=ENV,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_cli_runs_and_writes_manifest(tmp_path):
    manifest = tmp_path / "meters.json"
    proc = simulate(
        "--protocol=dlms",
        "--count=20",
        "--interface=hdlc",
        "--fault-share=0.5",
        "--faults=timeout,late",
        "--seed=3",
        f"--manifest={manifest}",
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("dlms hdlc 127.0.0.1:") and "meters 20" in line
        for _ in range(100):
            if manifest.exists() and manifest.stat().st_size:
                break
            import time

            time.sleep(0.05)
        data = json.loads(manifest.read_text())
        assert len(data) == 20 and data[5]["server_address"] == 6
        assert {d["fault"] for d in data} <= {None, "timeout", "late"}
        assert len(bytes.fromhex(data[0]["block_key"])) == 16
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_cli_serves_modbus_meters_that_read_meter_reads(tmp_path):
    manifest = tmp_path / "modbus.json"
    proc = simulate(
        "--protocol=modbus",
        "--count=5",
        "--model=pm5500",
        "--fault-share=0.5",
        "--faults=exception",
        f"--manifest={manifest}",
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("modbus tcp://127.0.0.1:") and "meters 5" in line
        url = line.split()[1]
        data = json.loads(manifest.read_text())
        assert [d["unit_id"] for d in data] == [1, 2, 3, 4, 5]
        healthy = next(d for d in data if d["fault"] is None)
        read = read_meter(
            "--protocol=modbus",
            f"--url={url}",
            f"--unit-id={healthy['unit_id']}",
            "--model=pm5500",
            "--what=registers,instantaneous",
        )
        assert read["registers"][0]["obis"] == "1-0:1.8.0*255"
        assert int(read["registers"][0]["value"]) > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_cli_serves_iec62056_21_meters_that_read_meter_reads(tmp_path):
    manifest = tmp_path / "iec21.json"
    proc = simulate(
        "--protocol=iec62056-21",
        "--count=3",
        "--password=pw123456",
        "--fault-share=0.5",
        "--faults=timeout",
        f"--manifest={manifest}",
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("iec62056-21 tcp://127.0.0.1:") and "meters 3" in line
        url = line.split()[1]
        data = json.loads(manifest.read_text())
        healthy = next(d for d in data if d["fault"] is None)
        read = read_meter(
            "--protocol=iec62056-21",
            f"--url={url}",
            f"--device-address={healthy['device_address']}",
            "--password=pw123456",
            "--what=clock,registers",
        )
        assert read["registers"][0]["obis"] == "1-0:1.8.0*255"
        assert int(read["registers"][0]["value"]) > 0
        assert read["clock"]["meter_time"].endswith("Z")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
