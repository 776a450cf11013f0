"""The data query page and its exports: scoped, exact, streamed, queued when large, audited."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from defusedxml import ElementTree
from django.test import Client
from openpyxl import load_workbook

from accounts.models import ActivityLog
from reports.exporters import cim
from tests.meters._data import EXPORT, IMPORT, T0, expected, ingest_days

pytestmark = pytest.mark.django_db

DAY1 = (T0 + timedelta(days=1)).date()


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def params(**extra):
    base = {
        "channels": [EXPORT],
        "start": DAY1.isoformat(),
        "end": DAY1.isoformat(),
        "resolution": "raw",
    }
    return base | extra


@pytest.fixture
def data(world):
    for meter in world.grid_a.meters + world.grid_b.meters:
        ingest_days(meter)
    return world


def body_of(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def test_query_table_shows_only_own_meters(data):
    page = client_for(data.operator_a).get("/reports/query/", params())
    assert page.status_code == 200
    rows = page.context["rows"]
    serials = {r.serial for r in rows}
    assert serials == {m.serial for m in data.grid_a.meters}  # 100 rows: 96 + 4
    assert {r.serial for r in rows[:96]} == {data.grid_a.meters[0].serial}
    assert page.context["has_next"]
    second = client_for(data.operator_a).get("/reports/query/", params(page=2))
    assert {r.serial for r in second.context["rows"]} == {data.grid_a.meters[1].serial}
    assert len(second.context["rows"]) == 92 and not second.context["has_next"]
    html = page.content.decode() + second.content.decode()
    assert not any(m.serial in html for m in data.grid_b.meters)
    # Asking for the other organisation's meter by name or grid node finds nothing.
    b_serial = data.grid_b.meters[0].serial
    by_name = client_for(data.operator_a).get("/reports/query/", params(q=b_serial))
    assert by_name.context["rows"] == []
    by_node = client_for(data.operator_a).get("/reports/query/", params(node=data.grid_b.feeder.pk))
    assert "rows" not in by_node.context and by_node.context["form"].errors["node"]


def test_query_values_and_aggregates(data):
    meter = data.grid_a.meters[1]
    page = client_for(data.operator_a).get("/reports/query/", params(q=meter.serial))
    rows = page.context["rows"]
    assert [r.value for r in rows[:96]] == [
        Decimal(expected(meter.serial, 2, 96 + i)) for i in range(96)
    ]
    daily = client_for(data.operator_a).get(
        "/reports/query/", params(q=meter.serial, resolution="day", channels=[IMPORT, EXPORT])
    )
    (imp, exp) = daily.context["rows"]
    assert exp.value == sum(Decimal(expected(meter.serial, 2, 96 + i)) for i in range(96))
    assert (imp.obis, imp.count, exp.count) == (IMPORT, 96, 96)


def test_customer_and_anonymous_cannot_query(data):
    assert client_for(data.customer).get("/reports/query/").status_code == 403
    assert Client().get("/reports/query/").status_code == 302


def test_query_graph_json_is_scoped(data):
    body = (
        client_for(data.operator_a)
        .get("/reports/query/graph.json", params(resolution="hour"))
        .json()
    )
    assert body["resolution"] == "hour"
    assert {c["meter"] for c in body["channels"]} == {m.serial for m in data.grid_a.meters}
    assert all(len(c["values"]) == 24 for c in body["channels"])


def exported(user, fmt, **extra):
    before = ActivityLog.objects.filter(action="export").count()
    response = client_for(user).post(
        f"/reports/query/export.{fmt}?" + urlencode(params(**extra), doseq=True)
    )
    assert response.status_code == 200, response.content[:300]
    assert ActivityLog.objects.filter(action="export").count() == before + 1
    return body_of(response)


def test_xlsx_export_reads_back_with_the_right_values(data):
    content = exported(data.operator_a, "xlsx", channels=[IMPORT, EXPORT])
    book = load_workbook(io.BytesIO(content), read_only=True)
    sheet = book["Data 2"] if "Data 2" in book.sheetnames else book.worksheets[1]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("meter", "obis", "quantity", "time", "value", "unit", "quality", "count")
    body = rows[1:]
    assert len(body) == 2 * 2 * 96  # two meters, two channels, one day
    assert {r[0] for r in body} == {m.serial for m in data.grid_a.meters}
    meter = data.grid_a.meters[0]
    exports = [r for r in body if r[0] == meter.serial and r[1] == EXPORT]
    assert [r[4] for r in exports] == [expected(meter.serial, 2, 96 + i) for i in range(96)]
    audit = ActivityLog.objects.filter(action="export").latest("pk")
    assert "xlsx" in audit.detail and audit.user == data.operator_a


def test_pdf_export_has_pages_and_text(data):
    content = exported(data.operator_a, "pdf")
    assert content.startswith(b"%PDF")
    try:
        from pypdf import PdfReader
    except ImportError:  # pypdf is a test extra; the bytes alone still tell a PDF
        assert content.count(b"/Type /Page") >= 2
        return
    reader = PdfReader(io.BytesIO(content))
    assert len(reader.pages) >= 3  # graph page + 192 rows at ~38 a page
    first = reader.pages[0].extract_text()
    assert "Meter data" in first
    text = "".join(page.extract_text() for page in reader.pages[1:])
    assert data.grid_a.meters[0].serial in text
    assert not any(m.serial in text for m in data.grid_b.meters)


def test_xml_and_csv_exports_stream(data):
    meter = data.grid_a.meters[0]
    root = ElementTree.fromstring(exported(data.operator_a, "xml"))
    values = root.findall("value")
    assert len(values) == 2 * 96 and root.get("resolution") == "raw"
    mine = [v for v in values if v.get("meter") == meter.serial]
    assert [int(v.text) for v in mine] == [expected(meter.serial, 2, 96 + i) for i in range(96)]
    assert {v.get("meter") for v in values}.isdisjoint({m.serial for m in data.grid_b.meters})
    csv_text = exported(data.operator_a, "csv").decode()
    assert csv_text.splitlines()[0].startswith("meter,obis")
    assert len(csv_text.splitlines()) == 1 + 2 * 96


def test_cim_meter_readings_export(data):
    """The readings as IEC 61968-9 MeterReadings: one IntervalBlock per meter and channel,
    -A per 15 minutes as reverse delta energy in Wh (docs/api.md)."""
    meter = data.grid_a.meters[0]
    ns = {"m": cim.NAMESPACE}
    root = ElementTree.fromstring(exported(data.operator_a, "cim"))
    readings = root.findall("m:MeterReading", ns)
    assert [r.findtext("m:Meter/m:mRID", namespaces=ns) for r in readings] == [
        m.serial for m in data.grid_a.meters
    ]
    block = readings[0].find("m:IntervalBlocks", ns)
    assert block.find("m:ReadingType", ns).get("ref") == "0.0.2.4.19.1.12.0.0.0.0.0.0.0.0.0.72.0"
    values = [int(v.text) for v in block.findall("m:IntervalReadings/m:value", ns)]
    assert values == [expected(meter.serial, 2, 96 + i) for i in range(96)]


def test_other_organisation_exports_only_its_own(data):
    for fmt in ("xml", "csv", "cim"):
        text = exported(data.operator_b, fmt).decode()
        assert data.grid_b.meters[0].serial in text
        assert not any(m.serial in text for m in data.grid_a.meters)
    assert client_for(data.operator_a).post("/reports/query/export.doc").status_code == 404


def test_export_by_get_changes_nothing(data, settings):
    """A GET (a prefetch, a link in a mail) neither queues a job nor writes an audit row."""
    from reports.models import ExportJob

    settings.AMI_EXPORT_DIRECT_ROWS = 10
    client = client_for(data.operator_a)
    before = ActivityLog.objects.count(), ExportJob.objects.count()
    response = client.get("/reports/query/export.xlsx", params(channels=[IMPORT, EXPORT]))
    assert response.status_code == 405
    assert (ActivityLog.objects.count(), ExportJob.objects.count()) == before
    # The page offers the exports as POST buttons carrying the query.
    page = client.get("/reports/query/", params()).content.decode()
    assert 'method="post" class="toolbar export-links"' in page
    assert 'formaction="/reports/query/export.csv?' in page


@pytest.fixture
def eager_celery():
    from amisite.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


# Transactional: the eager task closes stale connections around itself (amisite/celery.py).
@pytest.mark.django_db(transaction=True)
def test_large_export_is_queued_with_progress(
    data, settings, tmp_path, eager_celery, django_capture_on_commit_callbacks
):
    settings.AMI_EXPORT_DIRECT_ROWS = 10
    settings.MEDIA_ROOT = tmp_path
    client = client_for(data.operator_a)
    before = ActivityLog.objects.filter(action="export").count()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/reports/query/export.xlsx?" + urlencode(params(channels=[IMPORT, EXPORT]), doseq=True)
        )
    assert response.status_code == 302 and "/reports/exports/" in response["Location"]
    assert ActivityLog.objects.filter(action="export").count() == before + 1
    job_url = response["Location"]
    assert client.get(job_url).status_code == 200
    status = client.get(job_url + "status.json").json()
    assert status["status"] == "done" and status["rows_done"] == 2 * 2 * 96, status
    download = client.get(status["download"])
    book = load_workbook(io.BytesIO(body_of(download)), read_only=True)
    assert len(list(book.worksheets[1].iter_rows(values_only=True))) == 1 + 2 * 2 * 96
    # Someone else's export: 404, even within the same organisation.
    assert client_for(data.readonly_a).get(job_url).status_code == 404
    assert client_for(data.operator_b).get(status["download"]).status_code == 404
