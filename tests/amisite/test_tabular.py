"""No tabular export writes a live formula: one writer (amisite/tabular.py), fed a formula
through every CSV and XLSX export; a meta-test fails when code writes rows another way."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from amisite.tabular import FORMULA_START, csv_line, guard, unguard

ROOT = Path(__file__).resolve().parents[2]
FORMULA = '=HYPERLINK("http://evil.invalid","x")+1'
APPS = (
    "accounts",
    "amisite",
    "meters",
    "collection",
    "loadcontrol",
    "reports",
    "vending",
    "portal",
)


def test_guard_quotes_formulas_and_leaves_numbers():
    for text in ("=1+2", "+cmd", "-2+3", "@SUM(A1)", "\t=1", "\r=1"):
        assert guard(text) == "'" + text and unguard(guard(text)) == text
    for value in ("-12.5", "+3", "-1e5", 7, -7, Decimal("-1.5"), None, "plain", ""):
        assert guard(value) == value
    assert csv_line(["=1+2", "-3"]) == "'=1+2,-3\r\n"


def test_every_tabular_writer_goes_through_the_shared_one():
    """csv.writer, openpyxl rows and XlsxWriter appear only behind amisite/tabular.py."""
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if path.name == "tabular.py" or "migrations" in path.parts:
                continue
            text = path.read_text()
            where = path.relative_to(ROOT)
            assert not re.search(r"csv\.(writer|DictWriter)\(", text), f"{where}: use CsvWriter"
            assert "xlsxwriter" not in text, f"{where}: write XLSX through XlsxStream"
            if "Workbook(" in text:
                sheets = re.findall(r"(sheet|ws|info)\.append\((?!\s*xlsx_row\()", text)
                assert not sheets, f"{where}: append rows through xlsx_row"


def _no_live_formula_csv(text: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    for row in rows:
        for cell in row:
            assert not (cell.startswith(FORMULA_START) and guard(cell) != cell), cell
    assert any("'" + FORMULA in row for row in rows), "the formula was exported, quoted"
    return rows


def _no_live_formula_xlsx(content: bytes) -> None:
    book = load_workbook(io.BytesIO(content))
    seen = False
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                seen = seen or cell.value == "'" + FORMULA
    assert seen, "the formula was exported, quoted"


def _query_export(world, fmt):
    from meters.models import Channel
    from tests.meters._data import ingest_days
    from tests.reports.test_query import exported

    for meter in world.grid_a.meters:
        ingest_days(meter)
    Channel.objects.update(name=FORMULA)
    return exported(world.operator_a, fmt, title=FORMULA)


def _collection_report(world):
    from django.test import Client

    from tests.collection.test_status_report import make_run

    world.meter_model.name = FORMULA
    world.meter_model.save()
    make_run(world, world.org_a, world.grid_a, ok=1, failed=1)
    client = Client()
    client.force_login(world.operator_a)
    return client.get("/reports/collection/", {"format": "csv", "group": "model"}).content


def _vending_debt(world):
    from django.test import Client

    from tests.vending.conftest import make_vending
    from vending.models import PrepaidAccount

    vending = make_vending(world)
    customer = vending.account_a.customer
    customer.name = FORMULA
    customer.save()
    PrepaidAccount.objects.filter(pk=vending.account_a.pk).update(debt_balance=Decimal("12"))
    client = Client()
    client.force_login(world.admin_a)
    return client.get("/vending/reports/?csv=debt").content


def _registry(world, fmt):
    from rest_framework.test import APIClient

    world.grid_a.meters[0].__class__.objects.filter(pk=world.grid_a.meters[0].pk).update(
        firmware=FORMULA
    )
    client = APIClient()
    client.force_authenticate(world.engineer_a)
    response = client.get("/api/meters/export/", {"format": fmt})
    assert response.status_code == 200
    return b"".join(response.streaming_content) if response.streaming else response.content


def _billing(world, fmt):
    from django.test import Client

    from meters.choices import ChannelKind
    from meters.models import Channel

    Channel.objects.filter(meter_model=world.meter_model, kind=ChannelKind.REGISTER).update(
        name=FORMULA
    )
    client = Client()
    client.force_login(world.operator_a)
    response = client.get(
        "/reports/billing/", {"month": "2026-05", "format": fmt, "include_held": "1"}
    )
    assert response.status_code == 200
    return b"".join(response.streaming_content) if response.streaming else response.content


# Every tabular export: name -> (world -> bytes, "csv" | "xlsx").
EXPORTS = {
    "data query csv": (lambda w: _query_export(w, "csv"), "csv"),
    "data query xlsx": (lambda w: _query_export(w, "xlsx"), "xlsx"),
    "collection report csv": (_collection_report, "csv"),
    "vending debt csv": (_vending_debt, "csv"),
    "registry csv": (lambda w: _registry(w, "csv"), "csv"),
    "registry xlsx": (lambda w: _registry(w, "xlsx"), "xlsx"),
    "billing csv": (lambda w: _billing(w, "csv"), "csv"),
    "billing xlsx": (lambda w: _billing(w, "xlsx"), "xlsx"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(EXPORTS))
def test_a_formula_fed_through_every_export_stays_text(world, name):
    produce, kind = EXPORTS[name]
    content = produce(world)
    if kind == "csv":
        _no_live_formula_csv(content.decode("utf-8"))
    else:
        _no_live_formula_xlsx(content)
