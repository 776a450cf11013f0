"""Graphs: one panel per unit and kind (query page and its PDF); a sensible time axis for a
register history of one or two reads."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from reportlab.graphics.charts.lineplots import LinePlot

from collection.ingest import ingest_registers
from collection.protocols.base import RegisterValue
from reports.exporters import pdf
from reports.forms import DataQueryForm
from tests.meters._data import IMPORT, T0, ingest_days, ingest_reads
from tests.pages.browser import sign_in

REGISTER = "1-0:1.8.0*255"
DAY = (T0 + timedelta(days=1)).date().isoformat()
PARAMS = {"channels": [IMPORT, REGISTER], "start": DAY, "end": DAY, "resolution": "raw"}


@pytest.fixture
def measured(world):
    meter = world.grid_a.meters[0]
    ingest_days(meter)
    ingest_reads(meter)
    return meter


@pytest.mark.django_db
def test_registers_and_intervals_get_their_own_panels(world, measured):
    client = Client()
    client.force_login(world.operator_a)
    graph = client.get("/reports/query/graph.json", {**PARAMS, "q": measured.serial}).json()
    panels = {ch["obis"]: (ch["panel"], ch["panel_label"]) for ch in graph["channels"]}
    assert panels[IMPORT][0] != panels[REGISTER][0]
    assert (
        panels[IMPORT][1] == "Wh, per interval" and panels[REGISTER][1] == "Wh, cumulative register"
    )


@pytest.mark.django_db
def test_the_pdf_draws_one_panel_per_unit_and_kind(world, measured):
    form = DataQueryForm({**PARAMS, "q": measured.serial}, user=world.operator_a)
    assert form.is_valid(), form.errors
    drawing = pdf.graph(form.build(), 800, 500)
    plots = [shape for shape in drawing.contents if isinstance(shape, LinePlot)]
    assert len(plots) == 2
    highs = sorted(max(y for line in p.data for _x, y in line) for p in plots)
    assert highs[1] > 100 * highs[0]  # the intervals are not drawn on the register's scale


@pytest.mark.browser
def test_graphs_in_the_browser(world, measured, asgi_server, page):
    # One register read on another meter: its history graph spans days, not years.
    lonely = world.grid_a.meters[1]
    at = T0 + timedelta(days=2)
    ingest_registers([(lonely, at, [RegisterValue(REGISTER, Decimal("8712345"), "Wh")])])
    sign_in(page, asgi_server, "operator-a")
    query = "&".join(f"channels={c}" for c in PARAMS["channels"])
    page.goto(f"{asgi_server}/reports/query/?{query}&start={DAY}&end={DAY}&q={measured.serial}")
    page.wait_for_function("() => document.getElementById('query-graph').dataset.ready === '1'")
    assert page.locator("#query-graph .uplot").count() == 2
    page.goto(f"{asgi_server}/meters/{lonely.serial}/")
    page.wait_for_function("() => document.getElementById('register-graph').dataset.xMax")
    lo, hi = (
        float(page.locator("#register-graph").get_attribute(a))
        for a in ("data-x-min", "data-x-max")
    )
    assert lo <= at.timestamp() <= hi and hi - lo <= 15 * 86400
