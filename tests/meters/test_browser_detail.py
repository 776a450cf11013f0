"""An operator opens a meter's graph, zooms, reads phasors live, queries and exports data."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from openpyxl import load_workbook

from accounts.models import User
from collection.simulators.dlms_fleet import make_meters
from tests.collection.fleet import fleet_thread
from tests.collection.test_on_demand import point_meter_at

from ._data import EXPORT, IMPORT, ingest_days

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture
def eager_celery():
    from amisite.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def log_in(page, server, user):
    page.goto(server + "/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "op-pass-1234")
    page.click("button[type=submit]")
    page.wait_for_url(server + "/")


def graph_range(page):
    return page.eval_on_selector(
        "#profile-graph", "el => [el.dataset.start, el.dataset.stop, el.dataset.resolution]"
    )


def wait_for_graph(page):
    page.wait_for_function(
        "() => { const g = document.getElementById('profile-graph');"
        " return g.querySelector('canvas') && !g.hasAttribute('aria-busy'); }"
    )


def shoot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(300)
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})


def test_meter_graph_phasors_query_and_exports(world, asgi_server, page, eager_celery):
    operator = User.objects.get(pk=world.operator_a.pk)
    operator.set_password("op-pass-1234")
    operator.save()
    with fleet_thread(make_meters(1), interface="wrapper") as fleet:
        meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
        ingest_days(meter)
        log_in(page, asgi_server, operator)
        page.click("text=Meters")
        page.fill("#q", meter.serial)
        page.click("text=Filter")
        page.click(f"text={meter.serial}")
        page.wait_for_url(f"**/meters/{meter.serial}/")

        # The graph opens on the last week of data, raw; a month is answered hourly.
        wait_for_graph(page)
        start, stop, resolution = graph_range(page)
        assert resolution == "raw" and stop.startswith("2026-06-04")
        page.click("#graph-controls [data-span='31']")
        page.wait_for_function(
            "() => document.getElementById('profile-graph').dataset.resolution === 'hour'"
        )
        wait_for_graph(page)
        month = graph_range(page)
        # Zoom by dragging across the middle of the plot: a narrower range, raw again.
        plot = page.locator("#profile-graph .u-over")
        plot.scroll_into_view_if_needed()  # the mouse acts only inside the viewport
        box = plot.bounding_box()
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + box["width"] * 0.90, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.95, y, steps=5)
        page.mouse.move(box["x"] + box["width"] * 0.99, y, steps=5)
        page.mouse.up()
        page.wait_for_function(
            f"() => document.getElementById('profile-graph').dataset.start !== '{month[0]}'"
        )
        wait_for_graph(page)
        zoomed = graph_range(page)
        assert zoomed[0] > month[0] and zoomed[1] <= month[1] and zoomed[2] == "raw"
        # The zoom-out button widens it again.
        page.click("#graph-zoom-out")
        page.wait_for_function(
            f"() => document.getElementById('profile-graph').dataset.start < '{zoomed[0]}'"
        )
        wait_for_graph(page)
        assert page.locator("#graph-range").inner_text().strip()

        # A live instantaneous read against the simulator draws the phasor diagram.
        assert page.locator("#phasor").count() == 0
        page.click("#read-instantaneous")
        page.wait_for_selector("#phasor line.u", state="attached", timeout=30_000)
        numbers = page.locator("#phasor-values").inner_text()
        assert "L1" in numbers and "L3" in numbers
        assert page.locator("#phasor line.i").count() == 3
        shoot(page, "meter-detail")

    # The data query: fill the form, see the table and graph, export XLSX and PDF.
    page.goto(asgi_server + "/reports/query/")
    page.check(f"input[name=channels][value='{IMPORT}']")
    page.check(f"input[name=channels][value='{EXPORT}']")
    page.fill("#id_start", "2026-06-02")
    page.fill("#id_end", "2026-06-02")
    page.select_option("#id_resolution", "hour")
    page.click("#run-query")
    page.wait_for_selector("#query-table")
    page.wait_for_selector("#query-graph[data-ready='1']")
    table = page.locator("#query-table").inner_text()
    assert meter.serial in table and world.grid_b.meters[0].serial not in table
    with page.expect_download() as download:
        page.click("#export-xlsx")
    book = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes()), read_only=True)
    rows = list(book.worksheets[1].iter_rows(values_only=True))
    assert len(rows) == 1 + 2 * 24  # the meter with data: two channels, 24 hours
    assert {r[0] for r in rows[1:]} == {meter.serial}
    with page.expect_download() as download:
        page.click("#export-pdf")
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 2000
    shoot(page, "data-query")
