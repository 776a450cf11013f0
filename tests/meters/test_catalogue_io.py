"""Meter-model catalogue import/export: round trips, malformed files, scoping, commands."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts import audit
from accounts.models import ActivityLog
from meters.choices import ChannelKind, Protocol
from meters.models import Channel, MeterModel
from meters.registry_io import import_catalogue
from meters.registry_io.catalogue import error_text

HEADER = (
    "manufacturer,model,protocol,description,organisation,obis,name,unit,scaler,kind,profile_obis,"
    "accumulation"
)


def state():
    """Every meter model and channel, field by field, and the activity log size."""
    models = [audit.snapshot(m) for m in MeterModel.objects.order_by("pk")]
    channels = [audit.snapshot(c) for c in Channel.objects.order_by("pk")]
    return models, channels, ActivityLog.objects.count()


def enrich(world):
    """An org-A model with varied channels and text, and one without channels."""
    model = MeterModel.objects.create(
        manufacturer="Kamstrup", name="=OMNIPOWER", protocol=Protocol.IEC62056_21,
        description='Three-phase, "CT"\nsecond line ü ✓', organisation=world.org_a,
    )  # fmt: skip
    Channel.objects.create(
        meter_model=model, obis="1-0:32.7.0*255", name="-Voltage L1", unit="V", scaler=-1,
        kind=ChannelKind.INSTANTANEOUS,
    )  # fmt: skip
    Channel.objects.create(
        meter_model=model, obis="1-0:1.29.0*255", name="Import", unit="Wh", scaler=3,
        kind=ChannelKind.PROFILE, profile_obis="1-0:99.1.0*255",
    )  # fmt: skip
    MeterModel.objects.create(manufacturer="Zeta", name="Empty", organisation=world.org_a)


def export(client, fmt):
    response = client.get("/api/meters/export/", {"format": fmt, "what": "catalogue"})
    assert response.status_code == 200, response.content[:500]
    return b"".join(response.streaming_content) if response.streaming else response.getvalue()


def api_import(client, data: bytes, fmt: str, dry_run=False):
    upload = SimpleUploadedFile(f"catalogue.{fmt}", data)
    return client.post(
        "/api/meters/import/",
        {"file": upload, "format": fmt, "what": "catalogue", "dry_run": str(dry_run).lower()},
    )


def run_import(user, text: str | bytes, fmt="csv", dry_run=False):
    data = text.encode() if isinstance(text, str) else text
    return import_catalogue(io.BytesIO(data), fmt, user, dry_run=dry_run)


def xlsx_cells(data: bytes) -> list:
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    return [cell for row in sheet.iter_rows(values_only=True) for cell in row]


def messages(result) -> list[str]:
    return [error_text(e) for e in result.errors]


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
    assert body["created"] == [] and body["updated"] == [] and body["applied"]
    # Utility's model (visible, read-only for engineer A) and both of org A's models.
    assert body["models"] == {"created": 0, "updated": 0, "unchanged": 3}
    assert body["channels"]["unchanged"] == 7
    after = state()
    assert after[:2] == before[:2]
    assert not ActivityLog.objects.filter(action__in=["create", "update"]).exists()
    assert ActivityLog.objects.filter(action="import").count() == 1
    second = export(client, fmt)
    if fmt == "xlsx":
        assert xlsx_cells(second) == xlsx_cells(first)
    else:
        assert second == first


def test_export_content_and_audit(client, world):
    enrich(world)
    client.force_login(world.engineer_b)
    text = export(client, "csv").decode("utf-8-sig")
    lines = text.splitlines()
    assert lines[0] == HEADER
    # Engineer B sees the utility's model but none of org A's.
    assert "Kamstrup" not in text and "Zeta" not in text
    assert "Acme,AM550,dlms,,utility,1-0:1.29.0*255,Import per interval,Wh,0,profile," in text
    entry = ActivityLog.objects.get(action="export")
    assert entry.changes["what"] == "catalogue" and entry.changes["rows"] == 5


def test_accumulation_defaults_from_obis_and_is_overridable(world):
    head = "manufacturer,model,organisation,obis,name,unit,kind,profile_obis,accumulation"
    text = (
        f"{head}\n"
        "Idis,AM1,north,1-0:1.8.0*255,+A,Wh,profile,1-0:99.1.0*255,\n"
        "Idis,AM1,north,1-0:1.29.0*255,+A odd,Wh,profile,1-0:99.1.0*255,cumulative\n"
        "Idis,AM1,north,1-0:2.8.0*255,-A,Wh,profile,1-0:99.1.0*255,Interval\n"
    )
    result = run_import(world.engineer_a, text)
    assert result.ok, messages(result)
    got = dict(MeterModel.objects.get(name="AM1").channels.values_list("obis", "accumulation"))
    assert got == {
        "1-0:1.8.0*255": "cumulative",  # the OBIS default (D = 8)
        "1-0:1.29.0*255": "cumulative",  # the catalogue's word wins
        "1-0:2.8.0*255": "interval",
    }
    bad = run_import(world.engineer_a, f"{head}\nIdis,AM1,north,1.8.0,+A,Wh,profile,,sum\n")
    assert not bad.ok
    assert messages(bad) == ["line 2: accumulation: 'sum' is not one of: interval, cumulative"]


def test_create_and_update_with_audit(world):
    text = (
        f"{HEADER}\n"
        "Landis,E360,dlms,New,north,1.8.0,Import,Wh,0,register,\n"
        "Landis,E360,dlms,New,north,1-0:1.29.0*255,Import,Wh,0,profile,1.0.99.1.0.255\n"
        "Landis,E360,dlms,New,north,,,,,,\n"
    )
    result = run_import(world.engineer_a, text)
    assert result.ok, messages(result)
    assert result.models["created"] == 1 and result.channels["created"] == 2
    model = MeterModel.objects.get(manufacturer="Landis", name="E360")
    assert model.organisation == world.org_a
    profile = model.channels.get(kind="profile")
    assert profile.profile_obis == "1-0:99.1.0*255" and profile.profile_column is not None
    assert model.channels.get(kind="register").obis == "1-0:1.8.0*255"
    assert ActivityLog.objects.filter(action="create").count() == 3
    # Update: a channel's scaler and the description; a new channel; the rest unchanged.
    text = (
        f"{HEADER}\n"
        "Landis,E360,dlms,Changed,north,1-0:1.8.0*255,Import,kWh,3,register,\n"
        "Landis,E360,dlms,Changed,north,2.8.0,Export,Wh,0,register,\n"
    )
    result = run_import(world.engineer_a, text)
    assert result.ok, messages(result)
    assert result.models == {"created": 0, "updated": 1, "unchanged": 0}
    assert result.channels == {"created": 1, "updated": 1, "unchanged": 0}
    model.refresh_from_db()
    assert model.description == "Changed" and model.channels.count() == 3
    assert model.channels.get(obis="1-0:1.8.0*255").scaler == 3
    update = ActivityLog.objects.filter(action="update").order_by("pk").last()
    assert update.changes["scaler"] == ["0", "3"]


def test_dry_run_writes_nothing(client, world):
    client.force_login(world.engineer_a)
    before = state()
    text = f"{HEADER}\nLandis,E360,dlms,,north,1.8.0,Import,Wh,0,register,\n"
    response = api_import(client, text.encode(), "csv", dry_run=True)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["dry_run"] and not body["applied"] and body["models"]["created"] == 1
    assert state() == before


def test_import_page(client, world):
    client.force_login(world.engineer_a)
    good = f"{HEADER}\nLandis,E360,dlms,,north,1.8.0,Import,Wh,0,register,\n"
    upload = SimpleUploadedFile("c.csv", good.encode())
    response = client.post("/meters/import/", {"file": upload, "what": "catalogue"})
    assert response.status_code == 200
    assert b"2 created" in response.content
    assert MeterModel.objects.filter(name="E360").exists()
    bad = f"{HEADER}\nLandis,E361,dlms,,north,1-0:1.8,Import,Wh,0,register,\n"
    upload = SimpleUploadedFile("c.csv", bad.encode())
    response = client.post("/meters/import/", {"file": upload, "what": "catalogue"})
    assert response.status_code == 400
    assert b"not an OBIS code" in response.content and b"line 2" in response.content
    assert not MeterModel.objects.filter(name="E361").exists()


def test_management_commands_round_trip(world, tmp_path):
    enrich(world)
    path = tmp_path / "out.xlsx"
    call_command("export_catalogue", user="engineer-a", format="xlsx", output=str(path))
    before = state()
    call_command("import_catalogue", str(path), user="engineer-a")
    assert state()[:2] == before[:2]
    assert not ActivityLog.objects.filter(action__in=["create", "update"]).exists()
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{HEADER}\nAcme,AM551,dlms,,north,1-0:1.8,Import,Wh,0,register,\n")
    stderr = io.StringIO()
    with pytest.raises(CommandError, match="nothing imported"):
        call_command("import_catalogue", str(bad), user="engineer-a", stderr=stderr)
    assert "line 2: obis: not an OBIS code: '1-0:1.8'" in stderr.getvalue()


# --- scoping and permissions ---------------------------------------------------------------


def test_engineer_b_cannot_touch_org_a(world):
    enrich(world)
    before = state()
    text = (
        f"{HEADER}\n"
        "Kamstrup,=OMNIPOWER,dlms,x,north,1.8.0,Import,Wh,0,register,\n"
        "Landis,E360,dlms,,north,1.8.0,Import,Wh,0,register,\n"
        "Acme,AM550,dlms,,utility,1.8.0,Changed name,Wh,0,register,\n"
    )
    result = run_import(world.engineer_b, text)
    assert messages(result) == [
        "line 2: unknown meter model 'Kamstrup' '=OMNIPOWER' "
        "(not within your organisation's scope)",
        "line 3: unknown organisation 'north'",
        "line 4: meter model 'Acme' 'AM550' belongs to 'utility': you may use it but not change it",
    ]
    assert state() == before


def test_readonly_gets_403(client, world):
    client.force_login(world.readonly_a)
    before = state()[:2]
    text = f"{HEADER}\nLandis,E360,dlms,,north,1.8.0,Import,Wh,0,register,\n"
    upload = SimpleUploadedFile("c.csv", text.encode())
    assert (
        client.post("/api/meters/import/", {"file": upload, "what": "catalogue"}).status_code == 403
    )
    upload = SimpleUploadedFile("c.csv", text.encode())
    response = client.post("/meters/import/", {"file": upload, "what": "catalogue"})
    assert response.status_code == 403
    assert state()[:2] == before
    assert ActivityLog.objects.filter(outcome="denied").count() == 2
    # Reading the catalogue is fine.
    assert client.get("/api/meters/export/", {"what": "catalogue"}).status_code == 200


def test_operator_may_export_but_not_import_catalogue(client, world):
    client.force_login(world.operator_a)
    upload = SimpleUploadedFile("c.csv", f"{HEADER}\n".encode())
    assert (
        client.post("/api/meters/import/", {"file": upload, "what": "catalogue"}).status_code == 403
    )
    assert client.get("/meters/export.csv", {"what": "catalogue"}).status_code == 200
    assert client.get("/api/meters/export/", {"what": "nope"}).status_code == 400


# --- malformed files -----------------------------------------------------------------------

GOOD = "Acme,AM550,dlms,,utility,1-0:1.8.0*255,Active energy import,Wh,0,register,"
NEW = "Landis,E360,dlms,,north,1.8.0,Import,Wh,0,register,,"
MALFORMED = {
    "bad obis": (
        f"{HEADER}\n{NEW}\nLandis,E360,dlms,,north,1-0:1.8,Import,Wh,0,register,\n",
        "line 3: obis: not an OBIS code: '1-0:1.8'",
    ),
    "obis out of range": (
        f"{HEADER}\n{NEW}\nLandis,E360,dlms,,north,1-0:1.8.300,Import,Wh,0,register,\n",
        "line 3: obis: OBIS value groups are 0..255: '1-0:1.8.300'",
    ),
    "bad profile_obis": (
        f"{HEADER}\n{NEW}\nLandis,E360,dlms,,north,1.29.0,Import,Wh,0,profile,99.1\n",
        "line 3: profile_obis: not an OBIS code: '99.1'",
    ),
    "unknown kind": (
        f"{HEADER}\n{NEW}\nLandis,E360,dlms,,north,2.8.0,Export,Wh,0,meter,\n",
        "line 3: kind: 'meter' is not one of: register, profile, event_log, instantaneous",
    ),
    "scaler out of range": (
        f"{HEADER}\n{NEW}\nLandis,E360,dlms,,north,2.8.0,Export,Wh,12,register,\n",
        "line 3: scaler: 12 is outside -9..9",
    ),
    "scaler not a number": (
        f"{HEADER}\n{NEW}\nLandis,E360,dlms,,north,2.8.0,Export,Wh,x,register,\n",
        "line 3: scaler: 'x' is not a whole number",
    ),
    "duplicate row": (
        f"{HEADER}\n{NEW}\nLandis,E360,dlms,,north,1-0:1.8.0*255,Again,Wh,0,register,\n",
        "line 3: channel register 1-0:1.8.0*255 of meter model 'Landis' 'E360' appears twice "
        "(first at line 2)",
    ),
    "kind without obis": (
        f"{HEADER}\n{NEW}\nLandis,E360,dlms,,north,,Export,Wh,0,register,\n",
        "line 3: obis: a value is required for a channel",
    ),
    "model values differ": (
        f"{HEADER}\n{NEW}\nLandis,E360,modbus,,north,2.8.0,Export,Wh,0,register,\n",
        "line 3: protocol: 'modbus' differs from 'dlms' given for the same meter model at line 2",
    ),
    "unknown organisation": (
        f"{HEADER}\n{NEW}\nOther,X1,dlms,,nowhere,1.8.0,Import,Wh,0,register,\n",
        "line 3: unknown organisation 'nowhere'",
    ),
    "missing name": (
        f"{HEADER}\n{NEW}\nLandis,E360,dlms,,north,2.8.0,,Wh,0,register,\n",
        "line 3: name: a value is required for a new channel",
    ),
    "read-only model changed": (
        f"{HEADER}\n{NEW}\n{GOOD.replace('Wh,0', 'kWh,3')}\n",
        "line 3: meter model 'Acme' 'AM550' belongs to 'utility'",
    ),
    "missing column": ("manufacturer,model,obis\nAcme,AM550,1.8.0\n", "missing required column"),
    "unknown column": (f"{HEADER},colour\n{NEW},red\n", "unknown column(s): colour"),
    "meter file": ("serial,manufacturer,model\nX,Acme,AM550\n", "unknown column(s): serial"),
    "too many cells": (f"{HEADER}\n{NEW},extra\n", "13 cells but only 12 columns"),
    "empty": ("", "empty"),
    "header only": (f"{HEADER}\n", "holds no meter models"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_csv_changes_nothing(world, case):
    text, expected = MALFORMED[case]
    before = state()
    result = run_import(world.engineer_a, text)
    assert not result.ok
    assert any(expected in m for m in messages(result)), messages(result)
    assert state() == before


def test_every_bad_row_reported(world):
    text = (
        f"{HEADER}\n{NEW}\n"
        "Landis,E360,dlms,,north,1-0:1.8,Import,Wh,0,register,\n"
        "Landis,E360,dlms,,north,2.8.0,Export,Wh,0,register,\n"
        "Landis,E360,dlms,,north,3.8.0,Export,Wh,0,register,99\n"
        "Landis,E360,dlms,,north,4.8.0,Export,Wh,0,bogus,\n"
    )
    result = run_import(world.engineer_a, text)
    assert [e.line for e in result.errors] == [3, 5, 6]
    assert not MeterModel.objects.filter(name="E360").exists()


def test_xml_and_xlsx_errors_name_row(world):
    from openpyxl import Workbook

    xml = (
        '<?xml version="1.0"?>\n<catalogue>\n'
        "<channel><manufacturer>L</manufacturer><model>E</model><organisation>north"
        "</organisation><obis>1.8.0</obis><name>I</name><kind>register</kind></channel>\n"
        "<channel>\n<manufacturer>L</manufacturer><model>E</model><obis>1-0:1.8</obis>"
        "<name>I</name><kind>register</kind></channel>\n</catalogue>\n"
    )
    result = run_import(world.engineer_a, xml, "xml")
    assert messages(result) == ["channel #2 (line 4): obis: not an OBIS code: '1-0:1.8'"]
    result = run_import(world.engineer_a, "<meters><meter/></meters>", "xml")
    assert "root element must be <catalogue>" in messages(result)[0]
    result = run_import(
        world.engineer_a, "<catalogue><channel><serial/></channel></catalogue>", "xml"
    )
    assert "unknown element <serial>" in messages(result)[0]
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER.split(","))
    sheet.append(["L", "E", "dlms", None, "north", "1.8.0", "I", "Wh", 0, "register", None])
    sheet.append(["L", "E", "dlms", None, "north", "2.8.0", "I", "Wh", 10, "register", None])
    buffer = io.BytesIO()
    book.save(buffer)
    result = run_import(world.engineer_a, buffer.getvalue(), "xlsx")
    assert messages(result) == ["row 3: scaler: 10 is outside -9..9"]
    assert not MeterModel.objects.filter(manufacturer="L").exists()


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<catalogue><channel><manufacturer>&lol3;</manufacturer><model>X</model><obis>1.8.0</obis>
<kind>register</kind></channel></catalogue>
"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<catalogue><channel><manufacturer>&x;</manufacturer><model>X</model><obis>1.8.0</obis>
<kind>register</kind></channel></catalogue>
"""


@pytest.mark.parametrize("text", [BILLION_LAUGHS, EXTERNAL])
def test_xml_bombs_refused(world, text):
    before = state()
    result = run_import(world.engineer_a, text, "xml")
    assert "DTD" in result.errors[0].message
    assert state() == before


def test_size_and_row_limits(world, settings):
    before = state()
    settings.AMI_IMPORT_MAX_BYTES = 200
    result = run_import(world.engineer_a, f"{HEADER}\n" + f"{NEW}\n" * 10)
    assert "larger than 200 bytes" in result.errors[0].message
    settings.AMI_IMPORT_MAX_BYTES = 10_000
    settings.AMI_IMPORT_MAX_ROWS = 2
    text = f"{HEADER}\n" + "".join(NEW.replace("1.8.0", f"1.8.{i}") + "\n" for i in range(3))
    result = run_import(world.engineer_a, text)
    assert "more than 2 channel rows" in result.errors[0].message
    xlsx = b"PK\x03\x04 not really"
    result = run_import(world.engineer_a, xlsx, "xlsx")
    assert "XLSX" in result.errors[0].message
    assert state() == before
