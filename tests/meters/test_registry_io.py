"""Meter registry import/export: round trips, malformed files, scoping, dry runs, secrets."""

from __future__ import annotations

import io
import zipfile
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from accounts import audit
from accounts.models import ActivityLog
from meters.choices import MeterStatus, Security, Transport
from meters.models import Meter
from meters.registry_io import EXPORT_COLUMNS, import_registry

AUTH_KEY = "000102030405060708090a0b0c0d0e0f"
BLOCK_KEY = "f0e0d0c0b0a090807060504030201000"
SECRETS = ["secret-pw-1", AUTH_KEY, BLOCK_KEY]
HEADER = "serial,manufacturer,model,service_point,status,host,port"


def state():
    """Every meter's fields (secrets in clear) and the activity log size."""
    meters = []
    for meter in Meter.objects.order_by("serial"):
        row = audit.snapshot(meter)
        row.update({f: getattr(meter, f) for f in Meter.SECRET_FIELDS})
        meters.append(row)
    return meters, ActivityLog.objects.count()


def enrich(world):
    """Make the data varied: high security, no service point, odd text, empty optionals."""
    a1, a2 = world.grid_a.meters
    a1.security = Security.HIGH
    a1.auth_key, a1.block_key, a1.system_title = AUTH_KEY, BLOCK_KEY, "4d4d4d0000bc614e"
    a1.client_system_title = "414d490000000007"  # a utility gave this meter its own
    a1.latitude, a1.longitude = Decimal("51.501234"), Decimal("-0.123456")
    a1.firmware = "=HYPERLINK(1)"
    a1.ct_ratio, a1.concentrator = Decimal("200.5"), world.grid_a.concentrator
    a1.modbus_unit_id, a1.iec21_address = 7, '+00012345, "quoted"\nline'
    a1.save()
    a2.transport, a2.serial_url, a2.host, a2.port = Transport.SERIAL, "rfc2217://x:1", "", None
    a2.save()
    Meter.objects.create(
        serial="NA-STOCK-1", meter_model=world.meter_model, organisation=world.org_a,
        host="10.0.0.1", port=4059, install_date=None, firmware="ü-ß ✓",
    )  # fmt: skip


def export(client, fmt, **params):
    response = client.get(f"/meters/export.{fmt}", params)
    assert response.status_code == 200, response.content[:500]
    return b"".join(response.streaming_content) if response.streaming else response.getvalue()


def api_import(client, data: bytes, fmt: str, dry_run=False):
    upload = SimpleUploadedFile(f"meters.{fmt}", data)
    return client.post(
        "/api/meters/import/", {"file": upload, "format": fmt, "dry_run": str(dry_run).lower()}
    )


def run_import(user, text: str | bytes, fmt="csv", dry_run=False):
    data = text.encode() if isinstance(text, str) else text
    return import_registry(io.BytesIO(data), fmt, user, dry_run=dry_run)


def xlsx_cells(data: bytes) -> list:
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    return [cell for row in sheet.iter_rows(values_only=True) for cell in row]


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "xml"])
def test_round_trip_changes_nothing(client, world, fmt):
    enrich(world)
    client.force_login(world.engineer_a)
    first = export(client, fmt)
    before = state()
    response = api_import(client, first, fmt)
    assert response.status_code == 200, response.json()
    body = response.json()
    serials = sorted(Meter.objects.restrict(world.engineer_a).values_list("serial", flat=True))
    assert body["created"] == [] and body["updated"] == []
    assert sorted(body["unchanged"]) == serials and body["applied"]
    meters_after, _ = state()
    assert meters_after == before[0]
    assert not ActivityLog.objects.filter(action__in=["create", "update"]).exists()
    assert ActivityLog.objects.filter(action="import").count() == 1
    # Every exported field survives: a second export is identical.
    second = export(client, fmt)
    if fmt == "xlsx":
        assert xlsx_cells(second) == xlsx_cells(first)
    else:
        assert second == first


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "xml"])
def test_secrets_never_exported(client, world, fmt):
    enrich(world)
    client.force_login(world.admin_a)
    data = export(client, fmt)
    text = repr(xlsx_cells(data)) if fmt == "xlsx" else data.decode("utf-8-sig")
    assert "NA000001" in text
    for secret in SECRETS + ["password", "auth_key", "block_key"]:
        assert secret not in text


def test_export_values_and_audit(client, world):
    enrich(world)
    client.force_login(world.engineer_a)
    text = export(client, "csv", status="active").decode("utf-8-sig")
    lines = text.splitlines()
    assert lines[0] == ",".join(c.name for c in EXPORT_COLUMNS)
    assert "NA-STOCK-1" not in text and "NA000002" in text
    assert "'=HYPERLINK(1)" in text  # formula guarded
    log = ActivityLog.objects.get(action="export")
    assert log.changes["format"] == "csv" and log.changes["rows"] == 2
    assert log.user == world.engineer_a


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "xml"])
def test_operator_b_exports_only_org_b(client, world, fmt):
    client.force_login(world.operator_b)
    data = export(client, fmt)
    text = repr(xlsx_cells(data)) if fmt == "xlsx" else data.decode("utf-8-sig")
    assert "SB000001" in text and "SB000002" in text
    assert "NA0000" not in text and "NA-" not in text


def test_api_export_by_query_format(client, world):
    client.force_login(world.operator_a)
    response = client.get("/api/meters/export/", {"format": "xml", "q": "NA000001"})
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    assert "<serial>NA000001</serial>" in body and "NA000002" not in body
    assert client.get("/api/meters/export/", {"format": "pdf"}).status_code == 400


def test_customer_cannot_export(client, world):
    client.force_login(world.customer)
    assert client.get("/meters/export.csv").status_code == 403
    assert client.get("/api/meters/export/", {"format": "csv"}).status_code == 403


# --- applying changes ----------------------------------------------------------------------


def test_create_and_update_with_audit(world):
    text = (
        f"{HEADER},firmware,password\n"
        "NEW-1,Acme,AM550,NA-SP1,installed,127.0.0.1,4059,1.0,newpw\n"
        "NA000002,Acme,AM550,NA-SP2,faulty,127.0.0.1,4059,,\n"
        "NA000001,Acme,AM550,NA-SP1,active,127.0.0.1,4059,,\n"
    )
    result = run_import(world.engineer_a, text)
    assert result.ok, result.errors
    assert (result.created, result.updated, result.unchanged) == (
        ["NEW-1"], ["NA000002"], ["NA000001"]
    )  # fmt: skip
    new = Meter.objects.get(serial="NEW-1")
    assert new.organisation == world.org_a and new.password == "newpw"
    assert new.status == MeterStatus.INSTALLED
    changed = Meter.objects.get(serial="NA000002")
    assert changed.status == MeterStatus.FAULTY
    assert changed.password == "secret-pw-1"  # empty secret cell keeps the stored one
    assert ActivityLog.objects.filter(action="create", object_repr="NEW-1").count() == 1
    update = ActivityLog.objects.get(action="update", object_repr="NA000002")
    assert update.changes["status"] == ["active", "faulty"]
    assert ActivityLog.objects.filter(action="import").count() == 1


def test_secret_column_changes_secret(world):
    result = run_import(
        world.engineer_a,
        f"{HEADER},password\nNA000001,Acme,AM550,NA-SP1,active,127.0.0.1,4059,x2\n",
    )
    assert result.updated == ["NA000001"]
    assert Meter.objects.get(serial="NA000001").password == "x2"


def test_dry_run_writes_nothing(client, world):
    client.force_login(world.engineer_a)
    before = state()
    text = (
        f"{HEADER}\nNEW-1,Acme,AM550,NA-SP1,installed,127.0.0.1,4059\n"
        "NA000001,Acme,AM550,NA-SP1,faulty,127.0.0.1,4059\n"
    )
    response = api_import(client, text.encode(), "csv", dry_run=True)
    assert response.status_code == 200
    body = response.json()
    assert body["created"] == ["NEW-1"] and body["updated"] == ["NA000001"]
    assert body["dry_run"] and not body["applied"]
    assert state() == before


def test_import_page(client, world):
    client.force_login(world.engineer_a)
    assert client.get("/meters/import/").status_code == 200
    upload = SimpleUploadedFile(
        "m.csv", f"{HEADER}\nNEW-9,Acme,AM550,NA-SP2,active,127.0.0.1,4059\n".encode()
    )
    response = client.post("/meters/import/", {"file": upload, "dry_run": "1"})
    assert response.status_code == 200
    assert b"1 created" in response.content and not Meter.objects.filter(serial="NEW-9").exists()
    bad = SimpleUploadedFile(
        "m.csv", f"{HEADER}\nNEW-9,Acme,Nope,NA-SP2,active,127.0.0.1,4059\n".encode()
    )
    response = client.post("/meters/import/", {"file": bad})
    assert response.status_code == 400
    assert b"unknown meter model" in response.content and b"row 2" in response.content


def test_management_commands_round_trip(world, tmp_path):
    path = tmp_path / "out.xml"
    call_command("export_registry", user="engineer-a", format="xml", output=str(path))
    assert "NA000001" in path.read_text()
    call_command("import_registry", str(path), user="engineer-a")
    assert not ActivityLog.objects.filter(action__in=["create", "update"]).exists()


# --- scoping and permissions ---------------------------------------------------------------


def test_engineer_b_cannot_touch_org_a(world):
    before = state()
    result = run_import(
        world.engineer_b,
        f"{HEADER}\nNEW-B,Acme,AM550,NA-SP1,active,127.0.0.1,4059\nNA000001,Acme,AM550,SB-SP1,active,127.0.0.1,4059\n",
    )
    messages = [(e.line, e.message) for e in result.errors]
    assert (2, "unknown service point 'NA-SP1'") in messages
    assert any(line == 3 and "unknown meter 'NA000001'" in m for line, m in messages)
    assert state() == before
    result = run_import(
        world.engineer_b, "serial,manufacturer,model,organisation\nNEW-B,Acme,AM550,north\n"
    )
    assert [e.message for e in result.errors] == [
        "unknown organisation 'north'",
        "host: A TCP connection needs a host and a port.",  # every error of the row
    ]
    assert state() == before


def test_readonly_gets_403(client, world):
    client.force_login(world.readonly_a)
    before = state()[0]
    upload = SimpleUploadedFile(
        "m.csv", f"{HEADER}\nNEW-1,Acme,AM550,NA-SP1,active,127.0.0.1,4059\n".encode()
    )
    assert client.post("/api/meters/import/", {"file": upload}).status_code == 403
    assert client.get("/meters/import/").status_code == 403
    assert state()[0] == before
    assert ActivityLog.objects.filter(outcome="denied").count() == 2


# --- malformed files -----------------------------------------------------------------------

MALFORMED_CSV = {
    "missing column": ("serial,manufacturer\nX,Acme\n", "missing required column(s): model"),
    "unknown column": (
        f"{HEADER},colour\nX,Acme,AM550,NA-SP1,active,127.0.0.1,4059,red\n",
        "colour",
    ),
    "unknown model": (
        f"{HEADER}\nX,Acme,ZZ9,NA-SP1,active,127.0.0.1,4059\n",
        "unknown meter model",
    ),
    "duplicate serial": (
        f"{HEADER}\nX,Acme,AM550,NA-SP1,active,127.0.0.1,4059\nX,Acme,AM550,NA-SP2,active,127.0.0.1,4059\n",
        "appears twice",
    ),
    "bad enum": (
        f"{HEADER}\nX,Acme,AM550,NA-SP1,broken,127.0.0.1,4059\n",
        "status: 'broken' is not one of",
    ),
    "bad number": (
        f"{HEADER},modbus_unit_id\nX,Acme,AM550,NA-SP1,active,127.0.0.1,4059,80a\n",
        "modbus_unit_id: '80a' is not",
    ),
    "bad decimal": (
        f"{HEADER},ct_ratio\nX,Acme,AM550,NA-SP1,active,127.0.0.1,4059,1,5\n",
        "cells but only",
    ),
    "bad ratio": (
        f"{HEADER},ct_ratio\nX,Acme,AM550,NA-SP1,active,127.0.0.1,4059,abc\n",
        "not a number",
    ),
    "bad date": (
        f"{HEADER},install_date\nX,Acme,AM550,NA-SP1,active,127.0.0.1,4059,31/12/2024\n",
        "not a date",
    ),
    "out of range": (
        f"{HEADER},latitude\nX,Acme,AM550,NA-SP1,active,127.0.0.1,4059,91\n",
        "latitude:",
    ),
    "model rule": (
        f"{HEADER},security\nX,Acme,AM550,NA-SP1,active,127.0.0.1,4059,high\n",
        "auth_key:",
    ),
    "empty": ("", "empty"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_CSV))
def test_malformed_csv_changes_nothing(world, case):
    text, expected = MALFORMED_CSV[case]
    # A good row before the bad one: it must not be applied either.
    if "\n" in text and "missing" not in case and "unknown column" not in case:
        head, rest = text.split("\n", 1)
        pad = "," * (head.count(",") - 6)
        text = f"{head}\nNA000001,Acme,AM550,NA-SP1,faulty,127.0.0.1,4059{pad}\n{rest}"
    before = state()
    result = run_import(world.engineer_a, text)
    assert not result.ok
    assert any(expected in e.message for e in result.errors), result.errors
    assert state() == before
    if case in ("unknown model", "bad enum", "bad date"):
        assert result.errors[0].line == 3


def test_bad_row_reports_every_row(world):
    text = (
        f"{HEADER}\nA,Acme,AM550,NA-SP1,nope,127.0.0.1,4059\n"
        "B,Acme,AM550,NA-SP1,active,127.0.0.1,4059\nC,Acme,X,NA-SP9,active,127.0.0.1,4059\n"
    )
    result = run_import(world.engineer_a, text)
    assert sorted({e.line for e in result.errors}) == [2, 4]
    assert len([e for e in result.errors if e.line == 4]) == 2  # model and service point


def test_wrong_encoding_and_bom(world):
    before = state()
    latin1 = f"{HEADER},firmware\nX,Acme,AM550,NA-SP1,active,127.0.0.1,4059,caf\xe9\n".encode(
        "latin-1"
    )
    result = run_import(world.engineer_a, latin1)
    assert "not UTF-8" in result.errors[0].message
    assert state() == before
    bom = ("\ufeff" + f"{HEADER}\nX,Acme,AM550,NA-SP1,active,127.0.0.1,4059\n").encode()
    assert run_import(world.engineer_a, bom).created == ["X"]


def test_xlsx_not_a_zip(world):
    before = state()
    result = run_import(world.engineer_a, b"serial,manufacturer\n", "xlsx")
    assert "not a zip archive" in result.errors[0].message
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    result = run_import(world.engineer_a, buffer.getvalue(), "xlsx")
    assert "not an XLSX file" in result.errors[0].message
    assert state() == before


def test_xlsx_row_numbers(world):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    head = ["serial", "manufacturer", "model", "service_point", "install_date", "port", "host"]
    sheet.append(head)
    sheet.append(["X1", "Acme", "AM550", "NA-SP1", "2025-01-01", 4059, "h"])
    sheet.append(["X2", "Acme", "AM550", "NA-SP1", "soon", 4059.5, "h"])
    buffer = io.BytesIO()
    book.save(buffer)
    result = run_import(world.engineer_a, buffer.getvalue(), "xlsx")
    assert {e.line for e in result.errors} == {3}
    assert not Meter.objects.filter(serial="X1").exists()


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<meters><meter><serial>&lol3;</serial><manufacturer>Acme</manufacturer><model>AM550</model></meter></meters>
"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<meters><meter><serial>&x;</serial><manufacturer>Acme</manufacturer><model>AM550</model></meter></meters>
"""
DTD_ONLY = '<?xml version="1.0"?><!DOCTYPE meters SYSTEM "http://example.invalid/x.dtd"><meters/>'


@pytest.mark.parametrize("text", [BILLION_LAUGHS, EXTERNAL, DTD_ONLY])
def test_xml_bombs_refused(world, text):
    before = state()
    result = run_import(world.engineer_a, text, "xml")
    assert "DTD" in result.errors[0].message
    assert state() == before


def test_xml_errors_name_element_and_line(world):
    text = (
        '<?xml version="1.0"?>\n<meters>\n'
        "<meter><serial>X1</serial><manufacturer>Acme</manufacturer><model>AM550</model>"
        "<host>h</host><port>1</port></meter>\n"
        "<meter>\n<serial>X2</serial><manufacturer>Acme</manufacturer><model>AM550</model>\n"
        "<status>gone</status></meter>\n</meters>\n"
    )
    result = run_import(world.engineer_a, text, "xml")
    assert {(e.line, e.where) for e in result.errors} == {(4, "meter #2 (line 4)")}
    assert [e.message.split(":")[0] for e in result.errors] == ["status", "host"]
    assert not Meter.objects.filter(serial="X1").exists()
    result = run_import(world.engineer_a, "<meters><meter><colour/></meter></meters>", "xml")
    assert "unknown element <colour>" in result.errors[0].message
    result = run_import(world.engineer_a, "<meters><meter>", "xml")
    assert "not well-formed" in result.errors[0].message


def test_size_and_row_limits(world, settings):
    before = state()
    settings.AMI_IMPORT_MAX_BYTES = 100
    result = run_import(
        world.engineer_a, f"{HEADER}\n" + "X,Acme,AM550,NA-SP1,active,127.0.0.1,4059\n" * 10
    )
    assert "larger than 100 bytes" in result.errors[0].message
    settings.AMI_IMPORT_MAX_BYTES = 10_000
    settings.AMI_IMPORT_MAX_ROWS = 2
    text = f"{HEADER}\nX1,Acme,AM550,,\nX2,Acme,AM550,,\nX3,Acme,AM550,,\n"
    result = run_import(world.engineer_a, text)
    assert "more than 2 meters" in result.errors[0].message
    assert state() == before


def test_a_row_reports_every_error_it_has(world):
    """A bad status, an unknown service point, phases 7, latitude 123.5 and port 99999 in one
    row: five errors at once, not the first one only."""
    result = run_import(
        world.engineer_a,
        f"{HEADER},phases,latitude\nNEW-1,Acme,AM550,NA-SP9,nope,10.0.0.9,99999,7,123.5\n",
    )
    messages = sorted(e.message for e in result.errors)
    assert [m.split(":")[0] for m in messages] == [
        "latitude",
        "phases",
        "port",
        "status",
        "unknown service point 'NA-SP9'",
    ], messages
    assert {e.line for e in result.errors} == {2}
    assert not Meter.objects.filter(serial="NEW-1").exists()


def test_import_streams_in_chunks_and_still_sees_the_whole_file(world, monkeypatch):
    """Rows are validated and written a chunk at a time (bench/import_memory.py measures the
    memory); duplicates across chunks are still found and the import stays all-or-nothing."""
    from meters.registry_io import formats, importer

    monkeypatch.setattr(importer, "CHUNK", 2)
    header = "serial,manufacturer,model,service_point,host,port"
    rows = [f"CH{i:06d},Acme,AM550,,127.0.0.1,4059" for i in range(5)]
    duplicated = run_import(world.engineer_a, "\n".join([header, *rows, rows[0]]) + "\n")
    assert [(e.line, e.message) for e in duplicated.errors] == [
        (7, "serial 'CH000000' appears twice (first at line 2)")
    ]
    assert not Meter.objects.filter(serial__startswith="CH").exists()
    applied = run_import(world.engineer_a, "\n".join([header, *rows]) + "\n")
    assert applied.applied and len(applied.created) == 5, applied.errors
    assert Meter.objects.filter(serial__startswith="CH").count() == 5
    # The reader is lazy: rows before a broken line are handed out before it is reached.
    broken = "\n".join([header, *rows[:2], rows[2] + ",extra"]).encode()
    reader = formats.iter_records(broken, "csv", max_rows=10, max_unpacked=10**6)
    assert next(reader).values["serial"] == "CH000000"
    with pytest.raises(formats.FileError):
        list(reader)
