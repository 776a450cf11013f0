"""An operator reads a meter from its page in headless Chromium and sees what it said."""

import pytest

from accounts.models import User
from collection.simulators.dlms_fleet import make_meters
from tests.collection.fleet import fleet_thread
from tests.collection.test_on_demand import point_meter_at

pytestmark = pytest.mark.browser


@pytest.fixture
def eager_celery():
    from amisite.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_read_now_from_the_meter_page(world, asgi_server, page, eager_celery):
    operator = User.objects.get(pk=world.operator_a.pk)
    operator.set_password("op-pass-1234")
    operator.save()
    with fleet_thread(make_meters(1), interface="wrapper") as fleet:
        meter = point_meter_at(world.grid_a.meters[0], fleet, "90000001")
        page.goto(asgi_server + "/login/")
        page.fill("#id_username", operator.username)
        page.fill("#id_password", "op-pass-1234")
        page.click("button[type=submit]")
        page.wait_for_url(asgi_server + "/")
        page.click("text=Meters")
        page.fill("#q", meter.serial)
        page.click("text=Filter")
        page.click(f"text={meter.serial}")
        page.check("input[value=relay]")
        page.click("#read-now")
        page.wait_for_url("**/runs/*/")
        page.wait_for_function(
            "() => document.getElementById('run-status').textContent.trim() === 'succeeded'"
            " || document.getElementById('run-status').textContent.trim() === 'Succeeded'"
        )
        text = page.locator("#run-results").inner_text()
    assert "1-0:1.8.0*255" in text and "connected" in text
