"""The CLI core starts listeners, writes the manifest and stops on SIGTERM."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_cli_runs_and_writes_manifest(tmp_path):
    manifest = tmp_path / "meters.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "collection.simulators.cli",
            "--protocol=dlms",
            "--count=20",
            "--interface=hdlc",
            "--fault-share=0.5",
            "--faults=timeout,late",
            "--seed=3",
            f"--manifest={manifest}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
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
