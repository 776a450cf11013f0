"""SFTP exchange targets (issue 16) against a real SFTP server on loopback (asyncssh's server,
tests/reports/sftp_server.py): exports uploaded whole under a temporary name then renamed,
imports claimed, downloaded and processed like local drops, the host key pinned, the login
refused clearly, dropped connections losing and duplicating nothing, secrets kept secret.

Region A's target "MDM north" logs in as `ami` into the server's /mdm folder.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime

import asyncssh
import pytest
from django.db import connection
from django.test import Client

from accounts.models import ActivityLog
from amisite.encryption import decrypt
from meters.alarms.defaults import install_default_rules
from meters.alarms.models import Alarm
from meters.models import Meter
from reports import actions
from reports.exchange import export, folders, importer
from reports.models import ExchangeLog, ExchangeTarget
from tests.reports.sftp_server import SftpServer
from tests.reports.test_exchange import DAY, document, master_data, meter_xml

pytestmark = pytest.mark.django_db
PASSWORD = "s3cret-Passw0rd"


@pytest.fixture
def server(tmp_path):
    running = SftpServer(tmp_path / "server", password=PASSWORD).start()
    yield running
    running.stop()


def sftp_target(world, server, **changes) -> ExchangeTarget:
    fields = dict(
        organisation=world.org_a, name="MDM north", folder="north-mdm", run_as=world.engineer_a,
        at=datetime(2026, 1, 1, 2, 30).time(), export_config=True, kind="sftp",
        sftp_host="127.0.0.1", sftp_port=server.port, sftp_user="ami", sftp_password=PASSWORD,
        sftp_host_key=server.fingerprint, sftp_directory="/mdm",
    )  # fmt: skip
    fields.update(changes)
    return actions.save_target(ExchangeTarget(**fields))


@pytest.fixture
def exchange(world, settings, tmp_path, server):
    settings.AMI_EXCHANGE_ROOT = tmp_path / "exchange"
    settings.AMI_EXCHANGE_SETTLE_S = 0
    settings.AMI_EXCHANGE_SFTP_TIMEOUT_S = 10
    settings.TIME_ZONE = "UTC"
    world.server = server
    world.remote = server.root / "mdm"
    world.target = sftp_target(world, server)
    return world


def remote_drop(world, name: str, data: bytes) -> None:
    path = world.remote / "incoming" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    past = time.time() - 60
    os.utime(path, (past, past))


def names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_round_trip_export_upload_then_import_from_the_server(exchange):
    w = exchange
    before = master_data(w.org_a)
    row = export.export_slot(w.target, "MeterConfig", DAY)
    assert row.state == "done", row.summary
    local = (folders.base(w.target) / "outgoing" / row.filename).read_bytes()
    assert names(w.remote / "outgoing") == [row.filename]  # no temporary name left behind
    assert (w.remote / "outgoing" / row.filename).read_bytes() == local
    audit = ActivityLog.objects.get(action="exchange_export")
    assert f"sftp://ami@127.0.0.1:{w.server.port}/mdm/outgoing" in audit.detail
    # The receiver changes nothing, deletes a meter, sends the file back: all restored.
    w.grid_a.meters[1].delete()
    remote_drop(w, "mdm-001.xml", local)
    remote_drop(w, ".mdm-002.xml.part", b"<still being uploaded")
    [outcome] = importer.scan(w.target)
    assert outcome.row.state == "accepted", outcome.row.report
    assert master_data(w.org_a) == before
    [claimed] = names(w.remote / "processed")
    assert claimed.endswith("-mdm-001.xml") and outcome.row.remote_name == claimed
    assert outcome.row.filename == "mdm-001.xml" and outcome.row.sha256
    assert names(w.remote / "incoming") == [".mdm-002.xml.part"]
    assert names(w.remote / "processing") == []
    assert outcome.path.parent.name == "processed"  # the local copy, as for a folder target
    # A bad file: rejected whole, moved to rejected/ with its report beside it.
    remote_drop(w, "mdm-bad.xml", document(meter_xml("NA000001", model="NoSuchModel")))
    [bad] = importer.scan(w.target)
    assert bad.row.state == "rejected"
    rejected = names(w.remote / "rejected")
    assert len(rejected) == 2 and rejected[1] == rejected[0] + ".report.txt"
    report = (w.remote / "rejected" / rejected[1]).read_text()
    assert "rejected, nothing was imported" in report and "NoSuchModel" in report
    assert importer.scan(w.target) == []  # nothing left, nothing taken twice
    assert ExchangeLog.objects.filter(direction="import").count() == 2


def test_private_key_login(exchange, tmp_path):
    w = exchange
    key = asyncssh.generate_private_key("ssh-ed25519")
    w.server.client_key = key
    target = w.target
    target.sftp_password = ""
    target.sftp_private_key = key.export_private_key().decode()
    actions.save_target(target)
    assert export.export_slot(target, "MeterConfig", DAY).state == "done"
    assert len(names(w.remote / "outgoing")) == 1
    other = asyncssh.generate_private_key("ssh-ed25519")
    target.sftp_private_key = other.export_private_key().decode()
    actions.save_target(target)
    row = export.export_slot(target, "MeterConfig", DAY, force=True)
    assert row.state == "failed" and "refused the login of user 'ami'" in row.summary


def test_an_unknown_host_key_is_refused_before_logging_in(exchange):
    w = exchange
    install_default_rules(w.org_a)
    impostor = asyncssh.generate_private_key("ssh-ed25519").get_fingerprint("sha256")
    w.target.sftp_host_key = impostor
    actions.save_target(w.target)
    row = export.export_slot(w.target, "MeterConfig", DAY)
    # Permanent: given up at the first attempt (retrying cannot help), reported.
    assert row.state == "failed" and row.attempts == 1
    assert f"offered host key {w.server.fingerprint}, not the pinned {impostor}" in row.summary
    assert w.server.logins == []  # neither the password nor the key was sent
    assert names(w.remote / "outgoing") == []
    alarm = Alarm.objects.get(kind="report_delivery_failed")
    assert row.filename in alarm.reference
    assert importer.scan(w.target) == []  # imports refuse it too (logged, nothing taken)


def test_a_wrong_password_is_a_clear_error_and_no_secret_leaks(exchange, caplog):
    w = exchange
    install_default_rules(w.org_a)
    w.target.sftp_password = "not-the-password-XYZ"
    actions.save_target(w.target)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="asyncssh")  # the library's own lines too
    row = export.export_slot(w.target, "MeterConfig", DAY)
    assert row.state == "failed" and row.attempts == 1
    assert row.summary == (
        f"SFTP server 127.0.0.1:{w.server.port} refused the login of user 'ami' "
        "(wrong password or key)"
    )
    assert w.server.logins == ["ami"]
    assert any(r.name.startswith("asyncssh") for r in caplog.records)  # read, and clean
    texts = [
        caplog.text,
        *ActivityLog.objects.values_list("detail", flat=True),
        *(str(c) for c in ActivityLog.objects.values_list("changes", flat=True)),
        *Alarm.objects.values_list("reference", flat=True),
        row.summary,
    ]
    for secret in ("not-the-password-XYZ", PASSWORD):
        assert not any(secret in text for text in texts)


def test_a_connection_dropped_mid_upload_leaves_no_file_and_the_retry_succeeds(exchange):
    w = exchange
    w.server.drop_writes = 1  # the server goes away after the first write of the file
    with pytest.raises(export.RetryLater):
        export.export_slot(w.target, "MeterConfig", DAY)
    assert w.server.drops == 1
    row = ExchangeLog.objects.get(target=w.target)
    assert row.state == "retrying" and "connection lost" in row.summary
    # The receiver sees nothing under the final name; at most the hidden temporary file.
    assert [n for n in names(w.remote / "outgoing") if not n.startswith(".")] == []
    row = export.export_slot(w.target, "MeterConfig", DAY)  # the task's retry
    assert row.state == "done" and row.attempts == 2
    assert names(w.remote / "outgoing") == [row.filename]
    local = folders.base(w.target) / "outgoing" / row.filename
    assert (w.remote / "outgoing" / row.filename).read_bytes() == local.read_bytes()


def test_a_file_too_large_is_rejected_without_being_downloaded(exchange, settings):
    w = exchange
    settings.AMI_IMPORT_MAX_BYTES = 1000
    remote_drop(w, "huge.xml", b"<x>" + b" " * 5000 + b"</x>")
    w.server.drop_reads = 1  # any read of it would drop the connection
    assert importer.scan(w.target) == []
    row = ExchangeLog.objects.get()
    assert row.state == "rejected" and row.size == 5007 and "larger than 1000 bytes" in row.report
    assert w.server.drops == 0  # never read
    [claimed, report] = names(w.remote / "rejected")
    assert report == f"{claimed}.report.txt" and claimed.endswith("-huge.xml")
    assert not list((folders.base(w.target) / "incoming").iterdir())


def test_a_connection_dropped_mid_download_loses_nothing(exchange):
    w = exchange
    data = document(meter_xml("NA000009", point="NA-SP1"))
    remote_drop(w, "new-meter.xml", data)
    w.server.drop_reads = 1
    assert importer.scan(w.target) == []  # stopped: logged, nothing imported
    [claimed] = names(w.remote / "processing")  # claimed, kept for the next scan
    assert not ExchangeLog.objects.exists() and not Meter.objects.filter(serial="NA000009")
    assert [n for n in names(folders.base(w.target) / "incoming") if not n.startswith(".")] == []
    [outcome] = importer.scan(w.target)
    assert outcome.row.state == "accepted" and outcome.row.remote_name == claimed
    assert Meter.objects.get(serial="NA000009").organisation == w.org_a
    assert names(w.remote / "processed") == [claimed]


def test_a_file_imported_before_the_connection_dropped_is_never_imported_again(exchange):
    w = exchange
    remote_drop(w, "new-meter.xml", document(meter_xml("NA000009", point="NA-SP1")))
    w.server.drop_renames = 1  # imported and committed, then the move to processed/ is lost
    assert importer.scan(w.target) == []
    assert ExchangeLog.objects.get().state == "accepted"
    Meter.objects.filter(serial="NA000009").update(firmware="changed since")
    [claimed] = names(w.remote / "processing")  # still there: the rename never happened
    # The next scan does not import it again (its row has its claimed name): it only moves it.
    assert importer.scan(w.target) == []
    assert ExchangeLog.objects.count() == 1
    assert Meter.objects.get(serial="NA000009").firmware == "changed since"
    assert names(w.remote / "processed") == [claimed] and names(w.remote / "processing") == []


def test_old_exports_leave_the_servers_outgoing_too(exchange):
    w = exchange
    export.export_slot(w.target, "MeterConfig", DAY)
    [fresh] = names(w.remote / "outgoing")
    old = w.remote / "outgoing" / "north-MeterConfig-20260101.xml"
    old.write_text("<x/>")
    past = time.time() - 31 * 86400
    os.utime(old, (past, past))
    assert export.remove_old(w.target) == 1
    assert names(w.remote / "outgoing") == [fresh]
    assert "(server) north-MeterConfig-20260101.xml" in (
        ActivityLog.objects.get(action="exchange_retention").detail
    )


def test_secrets_are_encrypted_at_rest_and_never_shown(exchange, admin_client_a):
    w = exchange
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sftp_password FROM reports_exchangetarget WHERE id = %s", [w.target.pk]
        )
        [stored] = cursor.fetchone()
    assert PASSWORD not in stored and decrypt(stored) == PASSWORD
    assert repr(ExchangeTarget.objects.get(pk=w.target.pk).sftp_password) == "Secret('***')"
    page = admin_client_a.get(f"/admin/reports/exchangetarget/{w.target.pk}/change/")
    assert page.status_code == 200
    assert PASSWORD not in page.content.decode() and "stored (leave blank to keep)" in (
        page.content.decode()
    )
    log_page = admin_client_a.get("/reports/exchange/").content.decode()
    assert f"sftp://ami@127.0.0.1:{w.server.port}/mdm" in log_page and PASSWORD not in log_page


def test_the_admin_form_keeps_or_replaces_the_secret_and_never_audits_it(exchange, admin_client_a):
    w = exchange
    url = f"/admin/reports/exchangetarget/{w.target.pk}/change/"
    form = {
        "organisation": w.org_a.pk, "name": "MDM north", "kind": "sftp", "folder": "north-mdm",
        "run_as": w.engineer_a.pk, "at": "02:30", "enabled": "on", "export_readings": "on",
        "export_events": "on", "export_config": "on", "imports": "on", "retention_days": "30",
        "sftp_host": "127.0.0.1", "sftp_port": w.server.port, "sftp_user": "ami",
        "sftp_password": "", "sftp_private_key": "", "sftp_host_key": w.server.fingerprint,
        "sftp_directory": "/mdm",
    }  # fmt: skip
    assert admin_client_a.post(url, {**form, "name": "MDM North"}).status_code == 302
    kept = ExchangeTarget.objects.get(pk=w.target.pk)
    assert kept.name == "MDM North" and kept.sftp_password == PASSWORD  # blank kept it
    assert admin_client_a.post(url, {**form, "sftp_password": "N3w-Secret-42"}).status_code == 302
    assert ExchangeTarget.objects.get(pk=w.target.pk).sftp_password == "N3w-Secret-42"
    audited = ActivityLog.objects.filter(object_id=str(w.target.pk), action="update")
    assert audited.count() == 2
    assert not any("N3w-Secret" in str(a.changes) or PASSWORD in str(a.changes) for a in audited)
    refused = admin_client_a.post(url, {**form, "sftp_host_key": "MD5:00:11"})
    assert refused.status_code == 200 and "Pin the server" in refused.content.decode()


def test_an_sftp_target_needs_its_server_and_a_pinned_key(world, server):
    target = ExchangeTarget(
        organisation=world.org_a, name="x", folder="x", run_as=world.engineer_a,
        at=datetime(2026, 1, 1, 2, 30).time(), kind="sftp",
    )  # fmt: skip
    with pytest.raises(Exception) as caught:
        target.full_clean(exclude=["periodic_task"])
    errors = caught.value.message_dict
    assert {"sftp_host", "sftp_user", "sftp_host_key", "sftp_password"} <= set(errors)
    target.sftp_private_key = "not a key"
    with pytest.raises(Exception) as caught:
        target.full_clean(exclude=["periodic_task"])
    assert "sftp_private_key" in caught.value.message_dict


@pytest.fixture
def admin_client_a(world):
    client = Client()
    client.force_login(world.admin_a)
    return client
