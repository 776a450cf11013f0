"""A MeterConfig import killed mid-transaction (issue 16): nothing half-written, the file
still in incoming/, and the next scan imports it.

The file creates NA000009 and then updates NA000001, whose row this test holds locked from
another connection: the `manage.py exchange_import` process writes the new meter and then
waits on the lock, inside its one transaction, where it is killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import time as dt_time
from pathlib import Path

import psycopg
import pytest
from django.core.cache import cache
from django.db import connection

from meters.models import Meter
from reports import actions
from reports.exchange import folders, importer
from reports.models import ExchangeLog, ExchangeTarget
from tests.collection.test_worker_crash import database_url
from tests.reports.test_exchange import document, drop, meter_xml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE 'UPDATE%%meters_meter%%'"
        )
        return cursor.fetchone()[0] > 0


def test_killed_import_leaves_nothing_and_keeps_the_file(world, settings, tmp_path):
    settings.AMI_EXCHANGE_ROOT = tmp_path / "exchange"
    settings.AMI_EXCHANGE_SETTLE_S = 0
    target = actions.save_target(
        ExchangeTarget(
            organisation=world.org_a,
            name="MDM",
            folder="north-mdm",
            run_as=world.engineer_a,
            at=dt_time(2, 0),
        )  # fmt: skip
    )
    world.base = folders.base(target)
    data = document(
        meter_xml("NA000009", point="NA-SP1"),
        meter_xml("NA000001", point="NA-SP1",
                  extra="<status><value>faulty</value></status>"),
    )  # fmt: skip
    path = drop(world, "killed.xml", data)
    status_before = Meter.objects.get(serial="NA000001").status
    locker = psycopg.connect(database_url(), autocommit=False)
    locker.execute("SELECT id FROM meters_meter WHERE serial = 'NA000001' FOR UPDATE")
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "AMI_EXCHANGE_ROOT": str(settings.AMI_EXCHANGE_ROOT),
        "AMI_EXCHANGE_SETTLE_S": "0",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "exchange_import"], cwd=ROOT, env=env,
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not _waiting_on_a_lock():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the import never reached the locked meter"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        locker.rollback()
        locker.close()
    assert not Meter.objects.filter(serial="NA000009").exists()  # written, never committed
    assert Meter.objects.get(serial="NA000001").status == status_before
    assert path.exists() and path.read_bytes() == data
    assert not ExchangeLog.objects.exists()
    # The killed scan's lock would expire after AMI_EXCHANGE_LOCK_S; the next scan takes the
    # file then (here at once) and imports it whole.
    cache.delete(importer.lock_key(target))
    [outcome] = importer.scan(target)
    assert outcome.row.state == "accepted", outcome.row.report
    assert Meter.objects.get(serial="NA000009").organisation == world.org_a
    assert Meter.objects.get(serial="NA000001").status == "faulty"
