"""XML file exchange (issue 16): daily CIM export drops into a folder per organisation and
MeterConfig imports from its incoming/ folder, whole or not at all, with a report.

Region A (north) has two meters, NA000001 and NA000002, on service points NA-SP1 and
NA-SP2; region B (south) SB000001/2. The target's user is region A's engineer.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from defusedxml import ElementTree
from django.core.cache import cache

from accounts.models import ActivityLog
from meters.alarms.defaults import install_default_rules
from meters.alarms.models import Alarm
from meters.models import Meter
from meters.store.writes import write_events
from reports import actions
from reports.exchange import export, folders, importer, meterconfig
from reports.exporters import cim, cim_events
from reports.models import ExchangeLog, ExchangeTarget
from tests.meters._data import T0, ingest_days

pytestmark = pytest.mark.django_db

DAY = T0.date() + timedelta(days=1)  # 2 June 2026 (UTC is the test zone)
NS = {"c": meterconfig.NAMESPACE}
MASTER = ("serial", "meter_model_id", "firmware", "phases", "ct_ratio", "vt_ratio", "install_date",
          "status", "service_point_id", "concentrator_id", "latitude", "longitude",
          "organisation_id")  # fmt: skip


@pytest.fixture
def exchange(world, settings, tmp_path):
    settings.AMI_EXCHANGE_ROOT = tmp_path / "exchange"
    settings.AMI_EXCHANGE_SETTLE_S = 0
    settings.TIME_ZONE = "UTC"
    target = actions.save_target(
        ExchangeTarget(
            organisation=world.org_a,
            name="MDM north",
            folder="north-mdm",
            run_as=world.engineer_a,
            at=datetime(2026, 1, 1, 2, 30).time(),
            export_config=True,
        )  # fmt: skip
    )
    world.target = target
    world.base = folders.base(target)
    return world


def master_data(org) -> dict:
    return {m["serial"]: m for m in Meter.objects.filter(organisation=org).values(*MASTER)}


def drop(world, name: str, data: bytes, age: float = 60) -> Path:
    path = world.base / "incoming" / name
    path.write_bytes(data)
    past = time.time() - age
    os.utime(path, (past, past))
    return path


def meter_xml(serial, *, point=None, model="AM550", manufacturer="Acme", extra="") -> str:
    usage = f"<UsagePoints><mRID>{point}</mRID></UsagePoints>" if point else ""
    address = "<ComFunction><amrAddress>[2001:db8::5]:4059</amrAddress></ComFunction>"
    return (
        f"<Meter><serialNumber>{serial}</serialNumber>{extra}{address}<EndDeviceInfo><AssetModel>"
        f"<modelNumber>{model}</modelNumber><Manufacturer><Names><name>{manufacturer}</name>"
        f"</Names></Manufacturer></AssetModel></EndDeviceInfo>{usage}</Meter>\n"
    )


def document(*meters: str) -> bytes:
    return (meterconfig.HEADER + "".join(meters) + meterconfig.FOOTER).encode()


# --- exports -------------------------------------------------------------------------------


def test_export_drop_writes_each_slot_once_whole_and_scoped(exchange):
    w = exchange
    for meter in w.grid_a.meters + w.grid_b.meters:
        ingest_days(meter)
    write_events({
        (w.grid_a.meters[0].pk, "0-0:99.98.0*255", datetime(2026, 6, 2, 10, tzinfo=UTC), 1): "[]",
        (w.grid_b.meters[0].pk, "0-0:99.98.0*255", datetime(2026, 6, 2, 10, tzinfo=UTC), 1): "[]",
    })  # fmt: skip
    for document in export.documents(w.target):
        export.export_slot(w.target, document, DAY)
    outgoing = w.base / "outgoing"
    names = sorted(p.name for p in outgoing.iterdir())
    assert names == ["north-EndDeviceEvents-20260602.xml", "north-MeterConfig-20260602.xml",
                     "north-MeterReadings-20260602.xml"]  # fmt: skip
    readings = ElementTree.parse(outgoing / names[2]).getroot()
    serials = [r.findtext("m:Meter/m:mRID", namespaces={"m": cim.NAMESPACE}) for r in readings]
    assert set(serials) == {m.serial for m in w.grid_a.meters}  # 2 meters x 2 channels
    assert len(serials) == 4
    events = ElementTree.parse(outgoing / names[0]).getroot()
    ns = {"e": cim_events.NAMESPACE}
    assert [e.findtext("e:Assets/e:mRID", namespaces=ns) for e in events] == ["NA000001"]
    assert events[0].find("e:EndDeviceEventType", ns).get("ref") == "3.26.38.85"  # power down
    rows = {r.document: r for r in ExchangeLog.objects.filter(target=w.target)}
    assert {r.state for r in rows.values()} == {"done"}
    assert rows["EndDeviceEvents"].rows == 1 and rows["MeterConfig"].rows == 2
    digests = {p.name: folders.file_digest(p) for p in outgoing.iterdir()}
    assert {rows[d].sha256 for d in rows} == {sha for _size, sha in digests.values()}
    # The same slot again: nothing new (the receiver may have taken the file already).
    (outgoing / names[0]).unlink()
    assert all(export.export_slot(w.target, d, DAY) is None for d in export.documents(w.target))
    assert len(list(outgoing.iterdir())) == 2
    # Forced: rewritten in place, under the same names, the same content; still one row each.
    for document in export.documents(w.target):
        export.export_slot(w.target, document, DAY, force=True)
    assert {p.name: folders.file_digest(p) for p in outgoing.iterdir()} == digests
    assert ExchangeLog.objects.filter(target=w.target).count() == 3
    assert not [p for p in outgoing.iterdir() if p.name.startswith(".")]
    assert ActivityLog.objects.filter(action="exchange_export").count() == 6


def test_export_failure_is_retried_then_reported_and_recovers(exchange, settings):
    w = exchange
    settings.AMI_EXCHANGE_ATTEMPTS = 2
    install_default_rules(w.org_a)
    outgoing = w.base / "outgoing"
    outgoing.rmdir()
    outgoing.write_text("not a folder")  # every write fails
    with pytest.raises(export.RetryLater):
        export.export_slot(w.target, "MeterConfig", DAY)
    row = ExchangeLog.objects.get(target=w.target, document="MeterConfig")
    assert row.state == "retrying" and row.attempts == 1 and "Error" in row.summary
    assert export.export_slot(w.target, "MeterConfig", DAY).state == "failed"  # gave up
    failed = ActivityLog.objects.get(action="exchange_export_failed")
    assert failed.outcome == "failed" and row.filename in failed.detail
    alarm = Alarm.objects.get(kind="report_delivery_failed")  # the organisation's rule
    assert alarm.organisation == w.org_a and row.filename in alarm.reference
    assert alarm.link == f"/reports/exchange/{row.pk}/"
    outgoing.unlink()  # mended: a new run writes it, in the same slot's row
    row = export.export_slot(w.target, "MeterConfig", DAY)
    assert row.state == "done" and row.attempts == 1
    assert ExchangeLog.objects.filter(target=w.target).count() == 1
    assert (outgoing / row.filename).exists()


def test_the_targets_next_good_export_clears_its_failure_alarm(exchange, settings):
    """Given up for one slot, then the target delivers again (any document or day): its
    "report delivery failed" alarms are cleared by the system; another target's stays."""
    w = exchange
    settings.AMI_EXCHANGE_ATTEMPTS = 1
    install_default_rules(w.org_a)
    other = actions.save_target(
        ExchangeTarget(
            organisation=w.org_a,
            name="Billing",
            folder="north",
            run_as=w.engineer_a,
            at=datetime(2026, 1, 1, 3, 0).time(),
        )  # fmt: skip
    )
    for target in (w.target, other):
        outgoing = folders.base(target) / "outgoing"
        outgoing.rmdir()
        outgoing.write_text("not a folder")
        assert export.export_slot(target, "MeterReadings", DAY).state == "failed"
    mine, theirs = (
        Alarm.objects.get(reference__contains=f" {t.folder}/") for t in (w.target, other)
    )
    assert mine.state == theirs.state == "raised"
    (w.base / "outgoing").unlink()
    row = export.export_slot(w.target, "MeterConfig", DAY + timedelta(days=1))
    assert row.state == "done"
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.state == "cleared" and mine.cleared_by is None
    assert mine.clear_comment == f"delivered again: {row.filename} to north-mdm/outgoing"
    cleared = ActivityLog.objects.get(action="alarm_clear")
    assert cleared.username == "system" and cleared.changes["by_event"] == "exchange_export"
    assert theirs.state == "raised"


def test_export_task_and_its_beat_entry(exchange):
    """The beat entry (daily at the target's time, the utility's zone) runs the task, which
    writes every document of yesterday once; run again, it writes nothing."""
    from reports.tasks import exchange_export

    w = exchange
    task = w.target.periodic_task
    assert task.task == "reports.exchange_export" and task.args == f"[{w.target.pk}]"
    assert (task.crontab.hour, task.crontab.minute) == ("2", "30")
    assert exchange_export.run(w.target.pk, DAY.isoformat()) == 3
    assert exchange_export.run(w.target.pk, DAY.isoformat()) == 0
    assert exchange_export.run(w.target.pk) == 3  # yesterday
    w.target.enabled = False
    actions.save_target(w.target)
    assert not w.target.periodic_task.enabled
    assert exchange_export.run(w.target.pk, "2026-06-03") == 0


def test_old_exports_leave_outgoing_after_the_retention(exchange):
    """At the daily run, files in outgoing/ older than the target's retention (30 days by
    default) are removed, a killed writer's temporary file too; newer ones stay; 0 keeps all."""
    from reports.tasks import exchange_export

    w = exchange
    assert w.target.retention_days == 30
    outgoing = w.base / "outgoing"
    ages = {"north-MeterReadings-20260401.xml": 31, ".north-x.xml.123.tmp": 40,
            "north-MeterReadings-20260505.xml": 29}  # fmt: skip
    for name, days in ages.items():
        (outgoing / name).write_text("<x/>")
        past = time.time() - days * 86400
        os.utime(outgoing / name, (past, past))
    w.target.retention_days = 0
    actions.save_target(w.target)
    assert export.remove_old(w.target) == 0 and len(list(outgoing.iterdir())) == 3
    w.target.retention_days = 30
    actions.save_target(w.target)
    assert exchange_export.run(w.target.pk, DAY.isoformat()) == 3  # the beat's daily run
    left = sorted(p.name for p in outgoing.iterdir())
    assert "north-MeterReadings-20260401.xml" not in left and ".north-x.xml.123.tmp" not in left
    assert "north-MeterReadings-20260505.xml" in left and len(left) == 4  # + today's 3
    audit = ActivityLog.objects.get(action="exchange_retention")
    assert audit.detail.startswith("2 file(s) older than 30 days removed from north-mdm/outgoing")


# --- imports -------------------------------------------------------------------------------


def test_round_trip_export_then_import_gives_the_same_master_data(exchange):
    w = exchange
    a = w.grid_a.meters[0]
    a.firmware, a.install_date, a.ct_ratio = "1.2.3", date(2025, 3, 4), "200.000"
    a.latitude, a.longitude = "51.501234", "-0.123456"
    a.save()
    before = master_data(w.org_a)
    row = export.export_slot(w.target, "MeterConfig", DAY)
    exported = (w.base / "outgoing" / row.filename).read_bytes()
    # The master data drifts here, and a meter goes; the file puts it all back.
    Meter.objects.filter(pk=a.pk).update(firmware="9.9", status="faulty", phases=3,
                                         service_point=None, ct_ratio=1)  # fmt: skip
    gone = w.grid_a.meters[1]
    gone.delete()
    drop(w, "mdm-001.xml", exported)
    [outcome] = importer.scan(w.target)
    assert outcome.row.state == "accepted", outcome.row.report
    assert master_data(w.org_a) == before
    assert outcome.path.parent.name == "processed" and not list((w.base / "incoming").iterdir())
    assert "1 created, 1 updated" in outcome.row.summary
    # The same file again: accepted, nothing changes, nothing is duplicated.
    drop(w, "mdm-001.xml", exported)
    [again] = importer.scan(w.target)
    assert (
        again.row.state == "accepted" and "0 created, 0 updated, 2 unchanged" in again.row.summary
    )
    assert Meter.objects.count() == 4
    assert len(list((w.base / "processed").iterdir())) == 2
    audit = ActivityLog.objects.filter(action="exchange_import")
    assert audit.count() == 2 and {a.user for a in audit} == {w.engineer_a}


def test_import_creates_a_meter_in_the_drop_organisation(exchange):
    w = exchange
    data = document(meter_xml("NA000009", point="NA-SP1",
                              extra="<status><value>installed</value></status>"))  # fmt: skip
    drop(w, "new.xml", data)
    [outcome] = importer.scan(w.target)
    assert outcome.row.state == "accepted", outcome.row.report
    meter = Meter.objects.get(serial="NA000009")
    assert meter.organisation == w.org_a and meter.status == "installed"
    assert meter.service_point.code == "NA-SP1"


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<MeterConfig xmlns="http://iec.ch/TC57/2011/MeterConfig#"><Meter><serialNumber>&lol3;</serialNumber>
</Meter></MeterConfig>"""
REJECTED = {
    "not-xml": (b"serial,model\nNA000009,AM550\n", "not well-formed XML"),
    "bomb": (BOMB, "DTD or entities"),
    "no-serial": (
        document(meter_xml("NA000010"), "<Meter><EndDeviceInfo/></Meter>\n"),
        "line 4, Meter #2: schema: Element '{http://iec.ch/TC57/2011/MeterConfig#}EndDeviceInfo'"
        ": This element is not expected.",
    ),
    "bad-status": (
        document(meter_xml("NA000010", extra="<status><value>lost</value></status>")),
        "'lost' is not an element of the set",
    ),
    "other-org-meter": (
        document(meter_xml("NA000010", point="NA-SP1"), meter_xml("SB000001")),
        "line 4, Meter #2, serial SB000001: unknown meter 'SB000001'",
    ),
    "other-org-point": (
        document(meter_xml("NA000010", point="SB-SP1")),
        "unknown service point 'SB-SP1'",
    ),
    "duplicate": (
        document(meter_xml("NA000010"), meter_xml("NA000010")),
        "Duplicate key-sequence ['NA000010']",
    ),
    "unknown-model": (
        document(meter_xml("NA000010", model="XYZ")),
        "unknown meter model 'Acme' 'XYZ'",
    ),
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_a_bad_file_is_rejected_whole_with_a_report(exchange, case):
    w = exchange
    data, expected = REJECTED[case]
    before = master_data(w.org_a), master_data(w.org_b)
    drop(w, f"{case}.xml", data)
    [outcome] = importer.scan(w.target)
    assert outcome.row.state == "rejected"
    assert (master_data(w.org_a), master_data(w.org_b)) == before
    assert not Meter.objects.filter(serial__in=["NA000009", "NA000010"]).exists()
    rejected = w.base / "rejected"
    assert outcome.path.parent == rejected and outcome.path.read_bytes() == data
    report = (rejected / f"{outcome.path.name}.report.txt").read_text()
    assert f"{case}.xml: rejected, nothing was imported" in report
    assert expected in report, report
    assert outcome.row.report == report
    assert ActivityLog.objects.get(action="exchange_import").outcome == "failed"
    assert not list((w.base / "incoming").iterdir())


def test_files_still_being_written_are_left_alone(exchange, settings):
    w = exchange
    settings.AMI_EXCHANGE_SETTLE_S = 30
    data = document(meter_xml("NA000009", point="NA-SP1"))
    drop(w, "upload.xml.part", data)
    drop(w, ".hidden.xml", data)
    drop(w, "fresh.xml", data, age=0)  # just written: may still grow
    assert importer.scan(w.target) == []
    assert sorted(p.name for p in (w.base / "incoming").iterdir()) == [
        ".hidden.xml", "fresh.xml", "upload.xml.part"]  # fmt: skip
    os.rename(w.base / "incoming" / "upload.xml.part", w.base / "incoming" / "upload.xml")
    os.utime(w.base / "incoming" / "upload.xml", (time.time() - 60, time.time() - 60))
    [outcome] = importer.scan(w.target)
    assert outcome.row.filename == "upload.xml" and outcome.row.state == "accepted"
    assert ExchangeLog.objects.filter(direction="import").count() == 1


def test_one_scan_per_target_at_a_time(exchange):
    w = exchange
    drop(w, "a.xml", document(meter_xml("NA000009", point="NA-SP1")))
    cache.add(importer.lock_key(w.target), 1, 60)
    try:
        assert importer.scan(w.target) is None
        assert (w.base / "incoming" / "a.xml").exists()
    finally:
        cache.delete(importer.lock_key(w.target))


def test_target_user_must_be_staff_of_its_organisation(exchange):
    from django.core.exceptions import ValidationError

    w = exchange
    with pytest.raises(ValidationError) as info:
        actions.save_target(ExchangeTarget(organisation=w.org_a, name="x", folder="x",
                                           run_as=w.engineer_b, at=w.target.at))  # fmt: skip
    assert "run_as" in info.value.message_dict
    with pytest.raises(ValidationError) as info:
        actions.save_target(ExchangeTarget(organisation=w.org_a, name="y", folder="../up",
                                           run_as=w.engineer_a, at=w.target.at))  # fmt: skip
    assert "folder" in info.value.message_dict


def test_management_command(exchange):
    from io import StringIO

    from django.core.management import call_command

    w = exchange
    drop(w, "cmd.xml", document(meter_xml("NA000009", point="NA-SP1")))
    out = StringIO()
    call_command("exchange_import", stdout=out)
    assert "north-mdm/cmd.xml: accepted: 1 created" in out.getvalue()


def test_the_demo_has_a_folder_target_with_an_export_done(settings, tmp_path):
    """`make run`: North's folder target with yesterday's three files written, and one
    import accepted and one rejected (a South meter) with its report, on the exchange page."""
    from django.test import Client
    from django.urls import reverse

    from meters.demo import load_demo

    settings.AMI_EXCHANGE_SETTLE_S = 10
    demo = load_demo()
    target = ExchangeTarget.objects.get(folder="north-mdm")
    rows = ExchangeLog.objects.filter(target=target)
    exports = sorted(rows.filter(direction="export").values_list("document", "state"))
    assert exports == [("EndDeviceEvents", "done"), ("MeterConfig", "done"),
                       ("MeterReadings", "done")]  # fmt: skip
    assert len(list((folders.base(target) / "outgoing").iterdir())) == 3
    imports = dict(rows.filter(direction="import").values_list("filename", "state"))
    assert imports == {
        "north-master-data.xml": "accepted",
        "south-meter-by-mistake.xml": "rejected",
    }
    assert len(list((folders.base(target) / "rejected").iterdir())) == 2  # the file + report
    client = Client()
    client.force_login(demo.users["north-engineer"])
    page = client.get(reverse("reports:exchange"))
    assert page.status_code == 200 and b"south-meter-by-mistake.xml" in page.content
    client.force_login(demo.users["south-engineer"] if "south-engineer" in demo.users else
                       demo.users["south-operator"])  # fmt: skip
    assert b"north-mdm" not in client.get(reverse("reports:exchange")).content
