"""The energy balance on the grid tree and the map (reports/panels.py, issue 16).

Region A's figures are test_balance's (the week: transformer loss 28.08 %, feeder 30.48 %);
the colour levels follow AMI_LOSS_ALERT_PERCENT (alert at it, warn from half of it).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, time, timedelta
from decimal import Decimal as D

import pytest
from django.test import Client
from django.urls import reverse

from meters.models import GridNode
from meters.store.days import local_zone
from reports import panels
from reports.billing import Period
from tests.pages.browser import sign_in
from tests.reports.test_balance import WEEK, _check_meter, _write, grid  # noqa: F401

pytestmark = pytest.mark.django_db


def _by_code(rows):
    return {row["code"]: row for row in rows}


def test_levels_follow_the_alert_setting(grid, settings):  # noqa: F811
    user = grid.world.operator_a
    settings.AMI_LOSS_ALERT_PERCENT = "25"
    rows = _by_code(panels.node_losses(user, WEEK))
    assert set(rows) == {"NA-F1", "NA-T1"}  # region B's nodes count nowhere
    t = rows["NA-T1"]
    assert (t["loss_percent"], t["level"], t["kind"]) == ("28.1", "bad", "transformer")
    assert t["url"] == reverse("reports:balance-node", args=[grid.a.transformer.pk]) + (
        "?from=2026-05-01&to=2026-05-07"
    )
    assert (t["lat"], t["lng"]) == (51.5, -0.12)
    assert rows["NA-F1"]["loss_percent"] == "30.5" and rows["NA-F1"]["lat"] is None
    settings.AMI_LOSS_ALERT_PERCENT = "40"
    assert {r["level"] for r in panels.node_losses(user, WEEK)} == {"warn"}
    settings.AMI_LOSS_ALERT_PERCENT = "70"
    assert {r["level"] for r in panels.node_losses(user, WEEK)} == {"ok"}


def test_levels():
    alert = D(8)
    assert [panels.level(v, alert) for v in (None, D(-1), D(0), D(3.9), D(4), D(8))] == [
        "unknown", "bad", "ok", "ok", "warn", "bad"
    ]  # fmt: skip


def _json(html: str, element_id: str):
    found = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html)
    return json.loads(found.group(1))


def test_tree_and_map_pages_carry_only_the_readers_nodes(grid):  # noqa: F811
    for user, codes in ((grid.world.operator_a, {"NA-F1", "NA-T1"}),
                        (grid.world.operator_b, {"SB-F1", "SB-T1"})):  # fmt: skip
        client = Client()
        client.force_login(user)
        for url, element in ((reverse("meters:grid"), "grid-losses"),
                             (reverse("meters:map"), "map-losses")):  # fmt: skip
            response = client.get(url)
            assert response.status_code == 200
            got = _json(response.content.decode(), element)
            if element == "map-losses":
                assert {n["code"] for n in got} == codes
            else:  # the tree names its nodes itself: ids only
                assert {n["id"] for n in got} == {
                    n.pk for n in GridNode.objects.filter(code__in=codes)
                } and "code" not in got[0]


def test_badges_on_the_tree_and_rings_on_the_map(world, settings, asgi_server, page):
    """Last week's figures (the panel's period): the transformer's check meter reads 25 %
    more than the meter below it -> loss 20 %, an alert at the default 8 %."""
    settings.TIME_ZONE = "UTC"
    a = world.grid_a
    period = Period.last_days(7)
    first = datetime.combine(period.first, time(0), tzinfo=local_zone())
    n = 96 * 7
    _write(a.meters[0], [8] * n, [0] * n, first=first)
    _write(a.meters[1], [0] * n, [0] * n, first=first)
    _write(_check_meter(a, "NACHK-T", a.transformer), [10] * n, [0] * n, first=first)
    sign_in(page, asgi_server, "operator-a")
    page.goto(f"{asgi_server}/grid/")
    badge = page.locator(f'li.grid-node[data-id="{a.transformer.pk}"] .loss-badge').first
    badge.wait_for()
    assert badge.text_content() == "loss 20.0 %"
    assert "loss-bad" in badge.get_attribute("class")
    badge.click()
    page.wait_for_url(re.compile(rf"/reports/energy-balance/{a.transformer.pk}/\?from="))
    page.goto(f"{asgi_server}/map/")
    page.locator("path.loss-ring.loss-bad").first.wait_for(state="attached")
    assert page.locator("path.loss-ring").count() == 1  # the feeder has no coordinates
    assert timedelta(days=7) == period.end - period.start
