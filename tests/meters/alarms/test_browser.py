"""The alarm page in headless Chromium: a new alarm, its count and the outage table update
without a reload, through the real ASGI server and the Redis channel layer."""

import pytest
from django.test import Client

from meters.alarms.engine import evaluate_events
from tests.meters.alarms.helpers import POWER_DOWN, events, make_rule

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_new_alarm_appears_live(asgi_server, page, world):
    make_rule(world.utility)
    client = Client()
    client.force_login(world.operator_a)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": asgi_server}]
    )
    page.goto(asgi_server + "/alarms/")
    page.wait_for_function("() => document.getElementById('alarm-live').textContent === 'live'")
    assert page.locator("#open-count").inner_text() == "0"

    evaluate_events(events(world.grid_a.meters[0], POWER_DOWN))  # commits: pushed after it
    evaluate_events(events(world.grid_b.meters[0], POWER_DOWN))  # another organisation's

    row = page.locator("#alarm-table tbody tr[data-alarm]")
    row.first.wait_for()
    assert world.grid_a.meters[0].serial in row.first.inner_text()
    assert page.locator("#open-count").inner_text() == "1"
    assert page.locator("#raised-count").inner_text() == "1"
    page.wait_for_function("() => document.getElementById('meters-off').textContent === '1'")
    assert "1 of 2" in page.locator("#outage-table").inner_text()
    page.wait_for_timeout(500)
    assert row.count() == 1  # organisation B's alarm never showed up

    # A storm: the table keeps the 20 largest outages and links to the rest, as the page did.
    from meters.alarms.views import OUTAGE_PANEL_ROWS
    from tests.meters.alarms.test_outages import _transformer

    storm = []
    for i in range(OUTAGE_PANEL_ROWS + 1):
        storm += events(_transformer(world, f"T-{i:02d}", 1)[1][0], POWER_DOWN)
    evaluate_events(storm)
    page.wait_for_function("() => document.getElementById('meters-off').textContent === '22'")
    table = page.locator("#outage-table")
    assert table.locator("tbody tr:not(.more) td:first-child", has_text="Transformer").count() == 20
    more = table.locator("tr.more a")
    assert more.inner_text() == "2 more transformers with meters off"
    assert more.get_attribute("href") == "/alarms/outages/"
    assert table.locator("tbody tr:not(.more) td:first-child", has_text="Feeder").count() == 1
