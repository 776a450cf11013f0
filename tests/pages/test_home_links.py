"""Every fleet figure on the home page links to the meter list filtered to exactly those meters.

Generated from the page itself: each linked figure is found in the HTML, its link followed,
and the list's count compared with the figure (the "Unreachable" figure once linked to a
list that showed 0).
"""

import re
from html import unescape

import pytest
from django.test import Client

from tests.pages.fleet import meters_in_every_state

pytestmark = pytest.mark.django_db

FIGURE = re.compile(
    r'<li data-(?:health|status)="[^"]+">.*?<a href="(?P<url>/meters/\?[^"]+)">[^<]*</a>'
    r'\s*<strong class="n">(?P<n>\d+)</strong>'
    r'|<a href="(?P<url2>/meters/\?[^"]+)" id="(?:unreachable|not-read)">(?P<n2>\d+)</a>'
)


def figures(html: str) -> list[tuple[str, int]]:
    found = []
    for m in FIGURE.finditer(html):
        url = m.group("url") or m.group("url2")
        found.append((unescape(url), int(m.group("n") or m.group("n2"))))
    return found


@pytest.mark.parametrize("who", ["operator_a", "superuser"])
def test_each_home_figure_equals_its_filtered_list(world, who):
    meters_in_every_state(world)
    client = Client()
    client.force_login(getattr(world, who))
    html = client.get("/").content.decode()
    found = figures(html)
    linked = {url.split("?")[1].split("=")[0] for url, _ in found}
    assert linked == {"health", "status", "link", "read"}
    assert len(found) == 5 + 5 + 2  # health classes, registry statuses, unreachable, not read
    assert any(n > 0 for url, n in found if "link=unreachable" in url)
    for url, n in found:
        listed = client.get(url).context["paginator"].count
        assert listed == n, f"{url}: home says {n}, the list shows {listed}"


def test_health_filter_narrows_to_meters_in_service(world):
    made = meters_in_every_state(world)
    client = Client()
    client.force_login(world.operator_a)
    serials = {
        h: {m.serial for m in client.get(f"/meters/?health={h}").context["meters"]}
        for h in ("ok", "stale", "unreachable", "alarm")
    }
    assert serials["ok"] == {made["ok"].serial, made["installed"].serial}
    assert serials["alarm"] == {made["alarm"].serial}
    assert serials["unreachable"] == {made["unreachable"].serial, made["unreachable_never"].serial}
    assert made["in_stock"].serial not in serials["stale"]
    unreachable = {m.serial for m in client.get("/meters/?link=unreachable").context["meters"]}
    assert made["removed_unreachable"].serial in unreachable
