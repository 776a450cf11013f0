"""An operator of organisation A has the alarms page open in headless Chromium: an alarm raised
for one of A's meters (committed by a worker thread, as Celery would) appears without a reload;
an alarm raised at the same time for organisation B's meter never does."""

import pytest
from django.db import transaction

from meters.alarms.engine import evaluate_events
from tests.meters.alarms.helpers import POWER_DOWN, events, make_rule
from tests.meters.test_browser_dashboard import in_worker_thread, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def raise_committed(meter):
    with transaction.atomic():
        (alarm,) = evaluate_events(events(meter, POWER_DOWN))
    return alarm


def test_alarm_appears_live_for_own_organisation_only(world, asgi_server, page):
    make_rule(world.org_a)
    make_rule(world.org_b)
    mine, theirs = world.grid_a.meters[0], world.grid_b.meters[0]
    login(page, asgi_server, "operator-a")
    page.goto(asgi_server + "/alarms/")
    page.wait_for_function("() => document.getElementById('alarm-live').textContent === 'live'")
    rows = page.locator("#alarm-table tbody tr[data-alarm]")
    assert rows.count() == 0
    assert page.locator("#open-count").inner_text() == "0"
    page.evaluate("window.stillThisPage = true")

    in_worker_thread(raise_committed, theirs)  # B's first: had it been pushed, it'd be there
    in_worker_thread(raise_committed, mine)

    rows.first.wait_for()
    assert page.evaluate("window.stillThisPage === true")  # no reload
    assert mine.serial in rows.first.inner_text()
    assert page.locator("#open-count").inner_text() == "1"
    page.wait_for_timeout(700)
    assert rows.count() == 1
    assert theirs.serial not in page.locator("#alarm-table").inner_text()
