"""A planted meter secret reaches no page, API, admin, export, log line or database column.

Real sessions against the simulator (none, LLS, HLS; answered and refused), recorded by
the real reading path (on-demand read through the Celery task), then every door and
every table is searched for the secret in its byte, text, hex and base64 forms.
"""

from __future__ import annotations

import base64
import logging

import pytest
from django.db import connection
from rest_framework.test import APIClient

from collection import actions
from collection.models import JobRun, MeterReadResult
from collection.simulators.dlms_fleet import DlmsFleet, SimulatedMeter
from tests.admin_forms import admin_url, change_url, staff_client
from tests.collection.test_on_demand import point_meter_at

pytestmark = pytest.mark.django_db(transaction=True)

SERIAL = "90000001"
SIM_PASSWORD = b"PLANTED-LLS-9f3c"
WRONG_PASSWORD = b"PLANTED-BAD-71aa"
WRONG_KEY = bytes.fromhex("a1b2c3d4e5f60718293a4b5c6d7e8f90")


@pytest.fixture
def eager_celery():
    from amisite.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def sim():
    meter = SimulatedMeter(serial=SERIAL, password=SIM_PASSWORD)
    with DlmsFleet([meter], interface="wrapper").running_in_thread() as running:
        yield running, meter


def forms(secret: bytes) -> set[str]:
    """Every way the secret could be written in text."""
    out = {
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode(),
        repr(secret)[2:-1],
    }
    try:
        out.add(secret.decode())
    except UnicodeDecodeError:
        pass
    return {f for f in out if len(f) >= 8}


MODES = {
    "none": ("none", None, None),
    "lls answered": ("low", SIM_PASSWORD, None),
    "lls refused": ("low", WRONG_PASSWORD, None),
    "hls answered": ("high", None, "sim"),
    "hls refused": ("high", None, WRONG_KEY),
}


def _read(world, sim, mode):
    fleet, sim_meter = sim
    security, password, auth_key = MODES[mode]
    meter = point_meter_at(world.grid_a.meters[0], fleet, SERIAL)
    meter.security = security
    meter.dlms_client_address = {"none": 16, "low": 17, "high": 1}[security]
    meter.password = password.decode() if password else ""
    if security == "high":
        key = sim_meter.auth_key if auth_key == "sim" else auth_key
        meter.auth_key, meter.block_key = key.hex(), sim_meter.block_key.hex()
    meter.save()
    run = actions.request_on_demand_read(meter, ["clock"], acting_user=world.operator_a)
    return JobRun.objects.get(pk=run.pk), meter


def _database_text() -> str:
    """Every row of every table as text (bytes as hex), encrypted columns included."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from the catalogue
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        value = bytes(value).hex()
                    chunks.append(str(value))
    return "\n".join(chunks)


def _doors(world, run, meter) -> dict[str, str]:
    result = MeterReadResult.objects.get(run=run)
    pages = {}
    analyst = staff_client(world.readonly_a)
    pages["run page"] = analyst.get(f"/runs/{run.pk}/")
    pages["meter page"] = analyst.get(f"/meters/{meter.serial}/")
    root = staff_client(world.superuser)
    pages["admin result"] = root.get(change_url(result))
    pages["admin results"] = root.get(admin_url(MeterReadResult, "changelist"))
    pages["admin run"] = root.get(change_url(run))
    pages["admin meter"] = root.get(change_url(meter))
    api = APIClient()
    api.force_authenticate(world.readonly_a)
    pages["api run"] = api.get(f"/api/runs/{run.pk}/")
    pages["api results"] = api.get(f"/api/runs/{run.pk}/results/")
    pages["api meter"] = api.get(f"/api/meters/{meter.pk}/")
    for fmt in ("csv", "xml"):
        pages[f"api export {fmt}"] = api.get("/api/meters/export/", {"format": fmt})
    pages["collection report"] = analyst.get("/reports/collection/")
    texts = {}
    for name, response in pages.items():
        assert response.status_code == 200, (name, response.status_code)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        texts[name] = body.decode("utf-8", "replace")
    return texts


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", list(MODES))
def test_planted_secret_is_nowhere(world, sim, eager_celery, caplog, capsys, mode):
    caplog.set_level(logging.DEBUG)
    run, meter = _read(world, sim, mode)
    result = MeterReadResult.objects.get(run=run)
    refused = mode.endswith("refused")
    assert (result.status == "ok") != refused, (result.status, result.error)
    if refused:
        assert result.exchange_log, "a failed session keeps its (redacted) exchange"
        assert "2a2a2a2a" in result.exchange_log  # the secret's place, masked
    secrets = [SIM_PASSWORD, WRONG_PASSWORD, WRONG_KEY, sim[1].auth_key, sim[1].block_key]
    places = {"database": _database_text(), **_doors(world, run, meter)}
    captured = capsys.readouterr()
    places["log lines"] = caplog.text + captured.out + captured.err
    for place, text in places.items():
        for secret in secrets:
            for form in forms(secret):
                assert form not in text, f"{form!r} found in {place}"


def test_migration_scrubs_logs_recorded_before(world):
    """Old rows (wrapper, HDLC, HDLC segmented) lose the password; other frames stay."""
    import importlib

    from collection.protocols.dlms import framing as fr

    migration = importlib.import_module(
        "collection.migrations.0004_scrub_secrets_from_exchange_logs"
    )
    aarq = bytes.fromhex("6036a109060760857405080101ac0a8008" + b"Zq7-pw!x".hex() + "be0401020304")
    client, server = fr.encode_client_address(17), fr.encode_server_address(1, 17)
    data = fr.LLC_REQUEST + aarq
    segmented = [
        fr.hdlc_encode(server, client, 0x10, data[:24], segmented=True),
        fr.hdlc_encode(server, client, 0x12, data[24:]),
    ]
    frames = [fr.wrapper_encode(17, 1, aarq), *segmented]
    frames.append(fr.hdlc_encode(server, client, 0x10, data))
    get = fr.wrapper_encode(1, 17, bytes.fromhex("c40141000906313233343536"))
    log = "\n".join(f"2025-01-01T00:00:00+00:00 tx {f.hex()}" for f in frames)
    log += f"\n2025-01-01T00:00:01+00:00 rx {get.hex()}"
    meter = world.grid_a.meters[0]
    meter.password = "Zq7-pw!x"
    meter.save()
    run = JobRun.objects.create(organisation=world.org_a)
    result = MeterReadResult.objects.create(run=run, meter=meter, exchange_log=log)
    from django.apps import apps

    migration.scrub(apps, None)
    result.refresh_from_db()
    text = result.exchange_log
    for form in forms(b"Zq7-pw!x") | {b"Zq7-".hex(), b"pw!x".hex()}:
        assert form not in text
    assert text.splitlines()[-1].endswith(get.hex())  # an ordinary answer is kept
    for line in text.splitlines()[1:4]:  # masked HDLC frames still check
        frame = bytes.fromhex(line.split(" ")[2])
        fr.hdlc_parse(frame[1:-1])
