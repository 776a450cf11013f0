"""`make run`'s embedded database is SQLite; CI runs the suite on PostgreSQL.

Code paths written for PostgreSQL (advisory locks, `unnest(%s::type[])`) once broke the demo
on SQLite unnoticed: every South read batch failed on a relay event and was quarantined,
and no connect/disconnect command was ever sent. Here a few end-to-end tests of those paths
run again on SQLite in a child pytest, when this run is on PostgreSQL (on SQLite they run
as they are).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent

# Reads and commands through the simulator, storing relay states and claiming commands.
ON_SQLITE = [
    "tests/loadcontrol/test_disconnected_consuming.py",
    "tests/collection/test_command_queue.py::test_disconnect_then_connect_are_confirmed_by_the_read_back",
    # the demo seeds the portal's similar homes (grouped over joins, truncated to periods)
    "tests/portal/test_similar.py::test_late_reads_are_taken_by_the_next_run_and_a_killed_run_is_redone",
]


@pytest.mark.slow
@pytest.mark.django_db
def test_reads_and_commands_work_on_the_embedded_sqlite(tmp_path):
    if connection.vendor == "sqlite":
        pytest.skip("this run is on SQLite: the tests named here run as they are")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_"))}
    env.pop("DATABASE_URL", None)
    env["AMI_VAR_DIR"] = str(tmp_path)  # the SQLite file, away from the repository's var/
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist",
         *ON_SQLITE],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout.splitlines()[-1]
