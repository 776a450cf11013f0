"""The meter configuration page shows, per setting, the desired value, the value the meter was
last read to hold (with the read time) and a mark on every setting that differs, marked by the
same comparison the drift report uses."""

from __future__ import annotations

from datetime import timedelta

import lxml.html
import pytest
from django.test import Client
from django.utils import timezone

from loadcontrol import configuration, drift
from meters import configuration as config
from meters.models import ActualConfiguration
from tests.loadcontrol.test_configuration import LIMITER
from tests.pages.browser import sign_in, watch
from tests.pages.test_every_page import SHOTS, visit

pytestmark = pytest.mark.django_db(transaction=True)

COMMUNICATION = {
    "apn": "m2m.example",
    "connection_mode": "always_on",
    "listen_port": 4059,
    "inactivity_timeout_s": 120,
    "use_dhcp": True,
}


def _settings(page: str, section: str) -> dict[str, tuple[str, str, str]]:
    """{setting label: (desired, actual, mark)} of one section's table on the page."""
    tree = lxml.html.fromstring(page)
    (table,) = tree.xpath(f'//table[@id="settings-{section}"]')
    rows = {}
    for tr in table.xpath("./tbody/tr"):
        label = tr.xpath("./th")[0].text_content().strip()
        desired, actual, mark = (td.text_content().strip() for td in tr.xpath("./td"))
        rows[label] = (desired, actual, mark)
    return rows


def test_each_setting_shows_desired_actual_and_a_mark_where_they_differ(world):
    meter = world.grid_a.meters[0]
    engineer = Client()
    engineer.force_login(world.engineer_a)
    configuration.set_desired(meter, "limiter", LIMITER, acting_user=world.engineer_a)
    configuration.set_desired(meter, "communication", COMMUNICATION, acting_user=world.engineer_a)
    configuration.set_desired(
        meter, "alarms", {"filter_1": 0xFFFF00FF, "filter_2": 255}, acting_user=world.engineer_a
    )
    read_at = timezone.now() - timedelta(hours=2)
    held = config.clean("limiter", {**LIMITER, "threshold": "4500"})  # the meter holds 4500 W
    ActualConfiguration.objects.create(meter=meter, section="limiter", value=held, read_at=read_at)
    ActualConfiguration.objects.create(
        meter=meter,
        section="communication",
        value={**COMMUNICATION, "ip_address": "10.9.9.9", "subnet_mask": "255.0.0.0"},
        read_at=read_at,
    )
    ActualConfiguration.objects.create(
        meter=meter,
        section="alarms",
        value={"filter_1": 0xFFFF00FF, "filter_2": 255, "register_1": 0x10, "register_2": 0},
        read_at=read_at,
    )
    url = f"/meters/{meter.serial}/configuration/"
    page = engineer.get(url).content.decode()

    limiter = _settings(page, "limiter")
    assert limiter["Threshold"] == ("6000", "4500", "Differs")
    for same in ("Min over s", "Min under s", "Reconnect count", "Lockout s"):
        assert limiter[same][2] == "same", (same, limiter[same])
    assert limiter["Lockout s"][:2] == ("900", "900")
    # Null limiter values are left as the meter has them: shown, never marked.
    assert limiter["Emergency threshold"][2] == "not compared"
    caption = lxml.html.fromstring(page).xpath('//table[@id="settings-limiter"]/caption')[0]
    assert read_at.strftime("%Y-%m-%d") in caption.text_content()
    assert "Differs" in caption.text_content()

    # With DHCP the addresses are read back but not compared: the section is in step.
    comm = _settings(page, "communication")
    assert comm["Ip address"] == ("–", "10.9.9.9", "not compared")
    assert {mark for _d, _a, mark in comm.values()} == {"same", "not compared"}
    alarms = _settings(page, "alarms")
    assert alarms["Filter 1"] == ("0xFFFF00FF", "0xFFFF00FF", "same")
    # What the meter reports beyond the settings (the alarms raised now) is shown, not marked.
    assert alarms["Register 1"] == ("–", "0x00000010", "not compared")
    # The marks are the drift report's: one section differs, the others are in step.
    states = {s.section: s.state for s in drift.states_of([meter])[meter.pk]}
    assert (states["limiter"], states["communication"], states["alarms"]) == (
        drift.DIFFERS,
        drift.IN_STEP,
        drift.IN_STEP,
    )
    assert page.count("differs-mark") == 1
    assert list(limiter)[:2] == ["Threshold", "Emergency threshold"]  # the canonical order
    # The meter page's configuration panel names the settings that differ.
    detail = lxml.html.fromstring(engineer.get(f"/meters/{meter.serial}/").content.decode())
    (panel,) = detail.xpath('//div[@id="meter-configuration"]')
    assert "Differs Threshold" in " ".join(panel.text_content().split())

    # Once the meter is read to hold the desired threshold, the mark goes.
    ActualConfiguration.objects.filter(meter=meter, section="limiter").update(
        value=config.clean("limiter", LIMITER)
    )
    page = engineer.get(url).content.decode()
    assert _settings(page, "limiter")["Threshold"] == ("6000", "6000", "same")
    assert "differs-mark" not in page


def test_a_section_never_read_says_so_and_marks_nothing(world):
    meter = world.grid_a.meters[0]
    engineer = Client()
    engineer.force_login(world.engineer_a)
    configuration.set_desired(
        meter, "push", {"destination": "10.0.0.9:4060"}, acting_user=world.engineer_a
    )
    page = engineer.get(f"/meters/{meter.serial}/configuration/").content.decode()
    assert _settings(page, "push")["Destination"] == ("10.0.0.9:4060", "–", "")
    caption = lxml.html.fromstring(page).xpath('//table[@id="settings-push"]/caption')[0]
    assert "Never read back" in caption.text_content()
    assert "differs-mark" not in page


TOPS = """() => [...document.querySelectorAll('#settings-limiter tr.differs td')]
  .map(td => Math.round(td.getBoundingClientRect().top))"""


@pytest.mark.browser
def test_the_settings_sit_side_by_side_at_1280_and_stack_at_390(world, asgi_server, page):
    meter = world.grid_a.meters[0]
    configuration.set_desired(meter, "limiter", LIMITER, acting_user=world.superuser)
    held = config.clean("limiter", {**LIMITER, "threshold": "4500"})
    ActualConfiguration.objects.create(
        meter=meter, section="limiter", value=held, read_at=timezone.now()
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    seen = watch(page)
    sign_in(page, asgi_server, world.superuser.username)
    url = f"/meters/{meter.serial}/configuration/"
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(asgi_server + url)
    desired, actual, mark = page.evaluate(TOPS)
    assert desired == actual == mark  # one row: desired | actual | differs
    # visit() ends at 390 px and reports sideways scrolling, console errors and CSP.
    assert visit(page, seen, asgi_server + url, url) == []
    desired, actual, mark = page.evaluate(TOPS)
    assert desired < actual < mark  # stacked, one under the other
