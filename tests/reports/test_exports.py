"""PDF (with the graph) and CIM XML exports of the reports (issue 16)."""

from __future__ import annotations

import io

import pytest
from defusedxml import ElementTree
from django.test import Client
from django.urls import reverse
from pypdf import PdfReader

from reports.exporters import cim
from tests.reports.test_balance import grid  # noqa: F401  (the fixture)
from tests.reports.test_billing import fleet  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db
NS = {"m": cim.NAMESPACE}


def _pdf_text(response) -> str:
    body = b"".join(response.streaming_content)
    assert body[:4] == b"%PDF"
    return " ".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(body)).pages)


def test_balance_and_load_as_pdf_with_the_graph(grid):  # noqa: F811
    client = Client()
    client.force_login(grid.world.operator_a)
    week = {"from": "2026-05-01", "to": "2026-05-07"}
    node = reverse("reports:balance-node", args=[grid.a.transformer.pk])
    text = _pdf_text(client.get(node, {**week, "format": "pdf"}))
    assert "Energy balance NA-T1" in text and "2026-05-03" in text and "1056" in text
    assert "input (check meters) (Wh)" in text  # the graph's legend
    listing = _pdf_text(client.get(reverse("reports:balance"), {**week, "format": "pdf"}))
    assert "NA-T1" in listing and "SB-T1" not in listing
    curve = reverse("reports:load-node", args=[grid.a.transformer.pk])
    text = _pdf_text(client.get(curve, {**week, "format": "pdf"}))
    assert "Load duration NA-T1" in text and "0.116" in text
    assert client.get(reverse("reports:load"), {**week, "format": "pdf"}).status_code == 200


def test_billing_as_cim_meter_readings(fleet):  # noqa: F811
    client = Client()
    client.force_login(fleet.world.operator_a)
    url = reverse("reports:billing")
    held = client.get(url, {"month": "2026-05", "format": "xml"})
    assert held.status_code == 409  # NA000002 is held, as for CSV/XLSX
    answer = client.get(url, {"month": "2026-05", "format": "xml", "include_held": "1"})
    assert answer["Content-Type"] == "application/xml"
    root = ElementTree.fromstring(b"".join(answer.streaming_content))
    readings = root.findall("m:MeterReading", NS)
    assert [r.findtext("m:Meter/m:mRID", namespaces=NS) for r in readings] == [
        "NA000001", "NA000002"
    ]  # fmt: skip
    assert readings[1].findtext("m:Meter/m:Names/m:name", namespaces=NS) == "held"
    values = {
        r.find("m:ReadingType", NS).get("ref"): r.findtext("m:value", namespaces=NS)
        for r in readings[0].findall("m:Readings", NS)
    }
    assert values[cim.READING_TYPES["1-0:1.8.0*255"]] == "129800"  # the end read
    assert values[cim.reading_type("1-0:1.8.0*255", delta=True)] == "29780"  # consumption
    assert values[cim.READING_TYPES["1-0:1.6.0*255"]] == "4200"
    export = [
        r for r in readings[0].findall("m:Readings", NS)
        if r.find("m:ReadingType", NS).get("ref") == cim.reading_type("1-0:2.8.0*255", delta=True)
    ][0]  # fmt: skip
    quality = export.find("m:ReadingQualities/m:ReadingQualityType", NS).get("ref")
    assert quality == cim.ESTIMATED_QUALITY  # the interval sum stands in for missing reads
