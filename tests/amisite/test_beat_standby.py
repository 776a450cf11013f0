"""Two beats, one leader: the standby sends nothing until the leader dies, then takes over
within the lock's time to live, and the schedule goes on without doubled slots.

Both run as production runs them (`python -m amisite.beat`) against this test's database and
the suite's Redis; a schedule entry every second sends to a queue of this test's own, whose
length in the broker counts what was sent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from amisite import beat

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
TTL = 3


def _start(tmp_path: Path, name: str, env: dict) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / f"{name}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "amisite.beat", "--loglevel", "INFO"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return process, log


def _leads(log: Path) -> bool:
    return "leads" in log.read_text(errors="replace")


def _wait(condition, seconds: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.1)
    return time.monotonic() - started


def test_one_leader_sends_and_a_standby_takes_over(tmp_path):
    queue = f"beat-test-{uuid.uuid4().hex[:8]}"
    every_second = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(
        name=f"standby test {queue}",
        task="collection.heartbeat",
        interval=every_second,
        queue=queue,
    )
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(beat.LOCK_NAME, queue)
    db = connection.settings_dict
    env = os.environ | {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "AMI_BEAT_LOCK_TTL": str(TTL),
        "AMI_PROCESS": "beat",
    }
    first, first_log = _start(tmp_path, "first", env)
    _wait(lambda: _leads(first_log), 60, "the first beat leads")
    second, second_log = _start(tmp_path, "second", env)
    try:
        _wait(lambda: "waiting to take over" in second_log.read_text(), 60, "second is standby")
        _wait(lambda: client.llen(queue) >= 1, 30, "the leader sends")
        start_count, started = client.llen(queue), time.monotonic()
        time.sleep(6)
        both_running = client.llen(queue) - start_count
        elapsed = time.monotonic() - started
        # One sender: about one a second (two senders would give about two a second).
        assert 3 <= both_running <= elapsed + 1.5, (both_running, elapsed)
        assert not _leads(second_log)

        os.killpg(first.pid, signal.SIGKILL)  # the leader's host dies
        first.wait(10)
        at_kill, killed = client.llen(queue), time.monotonic()
        takeover = _wait(lambda: _leads(second_log), TTL + 10, "the standby takes over")
        assert takeover <= TTL + 5, takeover
        # The new leader sends what fell due meanwhile, once (not once per missed slot) ...
        recovered = _wait(lambda: client.llen(queue) > at_kill, 60, "the new leader sends")
        recovered += takeover
        window_start, window_count = time.monotonic(), client.llen(queue)
        time.sleep(5)
        after = client.llen(queue) - window_count
        window = time.monotonic() - window_start
        # ... and goes on at one a second.
        assert 3 <= after <= window + 1.5, (after, window)
        assert client.llen(queue) - at_kill <= time.monotonic() - killed + 1.5
        print(f"leader killed: standby leads after {takeover:.1f} s, sends after {recovered:.1f} s")
    finally:
        for process in (first, second):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        client.delete(beat.LOCK_NAME, queue)


def test_a_leader_that_cannot_renew_stops_before_the_lock_expires():
    """Redis gone for longer than the renewal margin: the leader exits (status 3)."""
    lost = []

    class Unrenewable:
        def reacquire(self):
            raise redis.exceptions.LockNotOwnedError("taken over")

    thread = beat.keep(Unrenewable(), 0.3, lost.append)
    thread.join(5)
    assert len(lost) == 1 and isinstance(lost[0], redis.exceptions.LockError)
