"""An operator uses the dashboard in headless Chromium: list, map, live home, grid tree.

Screenshots of each page at desktop (1280 px) and phone (390 px) width go to
artifacts/screenshots/ (git-ignored), for review of the layout.
"""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from collection.status import publish_status
from meters.models import CommStatus
from tests.pages.browser import in_worker_thread

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def place(world):
    for grid, base in ((world.grid_a, Decimal("51.50")), (world.grid_b, Decimal("51.51"))):
        for i, meter in enumerate(grid.meters):
            meter.latitude = base + Decimal(i) / 1000
            meter.longitude = Decimal("-0.12") + Decimal(i) / 1000
            meter.save()
    CommStatus.objects.create(meter=world.grid_a.meters[0], last_success=timezone.now())


def meter_goes_unreachable(meter):
    with transaction.atomic():
        CommStatus.objects.create(
            meter=meter, unreachable=True, consecutive_failures=3,
            last_attempt=timezone.now() - timedelta(minutes=1),
        )  # fmt: skip
        publish_status({"changed": "comm_status"})


def login(page, server, username):
    page.goto(server + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-" + username)
    page.click("button[type=submit]")
    page.wait_for_url(server + "/")


def shoot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((1280, 800), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(150)
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})


def test_operator_dashboard_end_to_end(world, asgi_server, page):
    place(world)
    a, b = world.grid_a, world.grid_b
    login(page, asgi_server, "operator-a")

    # Home: own fleet only, live link up; a status change published after commit shows.
    page.wait_for_function("() => document.getElementById('ws-state').textContent === 'live'")
    assert page.locator("#meters-total").inner_text() == "2"
    assert page.locator("[data-health=unreachable] .n").inner_text() == "0"
    in_worker_thread(meter_goes_unreachable, a.meters[1])
    page.wait_for_function(
        "() => document.querySelector('[data-health=unreachable] .n').textContent === '1'"
    )
    shoot(page, "home")

    # Meter list: search one meter by its customer's name.
    page.goto(asgi_server + "/meters/")
    page.fill("#q", a.customers[1].name)
    page.click("#filter-submit")
    page.wait_for_url("**/meters/?*")
    rows = page.locator("#meter-table tbody tr")
    assert rows.count() == 1 and a.meters[1].serial in rows.first.inner_text()
    page.goto(asgi_server + "/meters/")
    assert b.meters[0].serial not in page.locator("#meter-table").inner_text()
    shoot(page, "list")

    # Map: the data behind the markers is scoped; filtering narrows it.
    page.goto(asgi_server + "/map/")
    page.wait_for_function("() => window.amiMap && window.amiMap.loads > 0")
    data = page.evaluate("window.amiMap.last")
    assert data["mode"] == "points"
    assert {p["serial"] for p in data["points"]} == {m.serial for m in a.meters}
    assert page.locator(".leaflet-overlay-pane canvas").count() == 1
    page.select_option("#read", "today")
    page.click("#map-filter-submit")
    page.wait_for_url("**/map/?*read=today*")
    page.wait_for_function("() => window.amiMap && window.amiMap.loads > 0")
    data = page.evaluate("window.amiMap.last")
    assert [(p["serial"], p["health"]) for p in data["points"]] == [(a.meters[0].serial, "ok")]
    shoot(page, "map")

    # Grid: expand down to the transformer and load its service points lazily.
    page.goto(asgi_server + "/grid/")
    transformer = page.locator(f"li.grid-node[data-id='{a.transformer.pk}']")
    assert "2 meters" in transformer.locator("summary").first.inner_text()
    transformer.locator("summary").first.click()
    page.wait_for_selector(f"li.grid-node[data-id='{a.service_points[0].pk}']")
    assert transformer.locator("ul.lazy-children > li").count() == 2
    assert b.region.code not in page.content()
    shoot(page, "grid")
