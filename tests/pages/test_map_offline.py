"""The map without map tiles: it says so, draws the grid's topology, counts clusters."""

import pytest
from django.test import Client

from tests.pages.browser import sign_in, watch
from tests.pages.site import place_on_map

NEAR = {"bbox": "-0.2,51.4,0.0,51.6", "zoom": 14}


@pytest.fixture
def placed(world):
    place_on_map(world)
    return world


@pytest.mark.django_db
def test_map_data_carries_the_topology(placed):
    client = Client()
    client.force_login(placed.operator_a)
    data = client.get("/map/data/", NEAR).json()
    a = placed.grid_a
    assert data["mode"] == "points"
    [substation] = data["substations"]
    [transformer] = data["transformers"]
    assert substation["code"] == a.substation.code
    assert transformer["feeder"] == a.feeder.code
    assert transformer["substation"] == [substation["lat"], substation["lon"]]
    assert {tuple(p["transformer"]) for p in data["points"]} == {
        (transformer["lat"], transformer["lon"])
    }


@pytest.mark.django_db
def test_fleet_zoom_counts_meters_in_clusters(placed):
    client = Client()
    client.force_login(placed.superuser)
    data = client.get("/map/data/", {**NEAR, "zoom": 9}).json()
    assert data["mode"] == "cells" and data["points"] == []
    assert sum(c["n"] for c in data["cells"]) == data["total"] == 4


@pytest.mark.browser
def test_offline_map_says_so_and_draws_the_grid(placed, settings, asgi_server, page):
    settings.MAP_TILES_URL = "http://127.0.0.1:9/{z}/{x}/{y}.png"  # nothing listens there
    sign_in(page, asgi_server, "operator-a")
    seen = watch(page)
    tiles = []
    page.on("request", lambda r: tiles.append(r.url) if ":9/" in r.url else None)
    page.goto(asgi_server + "/map/")
    page.wait_for_function("() => window.amiMap.tiles === 'unavailable' && window.amiMap.loads > 0")
    assert page.locator("#map-tiles-note").is_visible()
    assert "unavailable" in page.locator("#map-tiles-note").inner_text()
    assert len(tiles) == 1  # one probe, not a screenful of failing tiles
    assert len(seen.console_errors) <= 1 and not seen.csp_violations
    markers = ".leaflet-marker-pane .map-asset"
    assert page.locator(markers + ".tr").count() == 1 == page.locator(markers + ".sub").count()
    # The legend's transformer is the marker's own markup, so it looks the same.
    legend, marker = page.evaluate(
        """() => [".legend .map-asset.tr > span", ".leaflet-marker-pane .map-asset.tr > span"]
            .map(s => getComputedStyle(document.querySelector(s)).transform)"""
    )
    assert legend == marker != "none"
