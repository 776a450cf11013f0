"""`make run` on an empty directory: within two minutes the demo has alarms and an outage.

The real launcher (web, worker, beat, simulator with `--scenario demo`, push listener) runs
on its embedded default; the test only reads its SQLite database. Nothing is written.
"""

import signal
import sqlite3
import time

import pytest

from amisite.launcher import free_port
from amisite.proctree import wait_until
from tests.amisite.test_launcher import start, wait_for_login

pytestmark = pytest.mark.slow
DEADLINE_S = 150  # the promise is two minutes from `make run`; a loaded CI gets a little more


def figures(db) -> dict:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        one = conn.execute
        return {
            "open_alarms": one(
                "SELECT count(*) FROM meters_alarm WHERE state IN ('raised', 'acknowledged')"
            ).fetchone()[0],
            "meters_off": one(
                "SELECT count(*) FROM meters_alarm WHERE kind = 'power_failure' "
                "AND state IN ('raised', 'acknowledged')"
            ).fetchone()[0],
            "pushed_events": one(
                "SELECT count(*) FROM meters_eventrecord e JOIN collection_pushcounter c "
                "ON c.meter_id = e.meter_id"
            ).fetchone()[0],
            "sales": one("SELECT count(*) FROM vending_sale").fetchone()[0],
        }


def test_make_run_shows_alarms_and_an_outage_within_two_minutes(tmp_path):
    port, sim_port = free_port(), free_port()
    log = tmp_path / "run.log"
    started = time.monotonic()
    proc = start(tmp_path, port, sim_port, log)
    seen = {}

    def alarms_and_an_outage() -> bool:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            seen.update(figures(tmp_path / "ami.sqlite3"))
        except sqlite3.OperationalError:  # tables not there yet, or a writer holds it
            return False
        # The outage's alarm may come first from the scheduled event-log read; the meters'
        # own pushes reach the store through the worker's queue, sometimes a little later.
        return bool(seen["open_alarms"] and seen["meters_off"] and seen["pushed_events"])

    try:
        wait_for_login(port, proc, log)
        left = DEADLINE_S - (time.monotonic() - started)
        reached = wait_until(alarms_and_an_outage, max(left, 1), step=1)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    output = log.read_text()
    assert reached, (seen, output[-3000:])
    assert seen["open_alarms"] >= seen["meters_off"] >= 1 and seen["pushed_events"] >= 1
    assert seen["sales"] >= 6  # vending seeded: three past sales per region
    assert "north-clerk" in output and "01900000017" in output
