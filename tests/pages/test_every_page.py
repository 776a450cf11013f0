"""Every page (generated from the URL patterns): CSP header, no inline code, 200, its layout.

The fast part runs through Django's test client. The browser part visits each page in real
Chromium at 1280 and 390 px: no Content-Security-Policy violation or other console error,
nothing wider than the window at either width (a wide table scrolls inside itself), and a
screenshot of each page at both widths in artifacts/screenshots/ (git-ignored) for people
to look at.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

from amisite.csp import HEADER
from tests.pages.browser import sign_in, watch
from tests.pages.inline import inline_code
from tests.pages.site import CUSTOMER_PAGES, NOT_PAGES, cases, make_page_data, pages, url_names

TILE_PROBE_FAILED = "Failed to load resource: net::ERR_NAME_NOT_RESOLVED"
# The page's width, the window's, and the first elements reaching past the window's edge.
WIDTHS = """() => [
  document.documentElement.scrollWidth, window.innerWidth,
  [...document.querySelectorAll("body *")]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
                 && !e.closest(".table-scroll, .scroll, pre, .leaflet-container, table.list"))
    .slice(0, 3).map(e => e.tagName + "#" + e.id + "." + e.className)
]"""
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture
def data(world):
    return make_page_data(world)


def check_csp(response) -> list[str]:
    policy = response.get(HEADER) if hasattr(response, "get") else None
    if not policy:
        return ["no Content-Security-Policy header"]
    problems = []
    if "unsafe-inline" in policy or "unsafe-eval" in policy:
        problems.append(f"policy allows inline code: {policy}")
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'"):
        if directive not in policy:
            problems.append(f"policy lacks {directive}")
    return problems


@pytest.mark.django_db
def test_every_pattern_has_a_case(data):
    table = cases(data)
    missing = [
        f"{name} ({route})"
        for name, route, takes_args in url_names()
        if takes_args and name not in table and name not in NOT_PAGES
    ]
    assert not missing, "pages with arguments and no case in tests/pages/site.py: " + ", ".join(
        missing
    )
    stale = [
        name
        for name in list(table) + list(NOT_PAGES) + list(CUSTOMER_PAGES)
        if name not in {n for n, *_ in url_names()}
    ]
    assert not stale, f"cases for patterns that no longer exist: {stale}"


@pytest.mark.django_db
def test_every_page_has_the_policy_and_no_inline_code(data):
    client = Client()
    client.force_login(data.world.superuser)
    customer = Client()
    customer.force_login(data.world.customer)
    urls = pages(data)
    assert len(urls) >= 25
    walk = [(client, url) for url in urls] + [(customer, url) for url in pages(data, True)]
    assert len(walk) > len(urls)
    problems = {}
    for who, url in walk:
        response = who.get(url)
        found = [] if response.status_code == 200 else [f"HTTP {response.status_code}"]
        found += check_csp(response)
        found += inline_code(response.content.decode())
        if found:
            problems[url] = found
    anonymous = Client()
    for url in ("/login/", "/no-such-page/"):
        response = anonymous.get(url)
        found = check_csp(response) + inline_code(response.content.decode())
        if found:
            problems[url] = found
    assert not problems, "\n".join(f"{u}: {p}" for u, p in problems.items())


def test_inline_code_is_found():
    """The detector itself: each kind of inline code is caught, data blocks and files are not."""
    html = (
        '<script>alert(1)</script><script src="/s.js"></script>'
        '<script id="x" type="application/json">{}</script>'
        '<style>p{}</style><p style="color:red" onclick="x()">'
        '<a href="javascript:void(0)">x</a><div data-style="fine" class="onclick">'
    )
    kinds = [p.split(":")[0].split(" ")[0] for p in inline_code(html)]
    assert kinds == ["inline", "<style>", "style", "onclick", "javascript"]


def shot_name(url: str) -> str:
    path, _, query = url.partition("?")
    path = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "uuid", path)
    name = re.sub(r"[^a-zA-Z0-9]+", "-", path).strip("-") or "home"
    return name + ("-query" if query else "")


def visit(page, seen, address: str, url: str) -> list[str]:
    """Open one page at 1280 and 390 px: screenshots of both, and what is wrong with it."""
    seen.console_errors.clear()
    seen.csp_violations.clear()
    page.set_viewport_size({"width": 1280, "height": 800})
    response = page.goto(address)
    page.wait_for_load_state("networkidle")
    if url.startswith("/map/"):
        page.wait_for_function("() => window.amiMap.loads > 0 && window.amiMap.tiles !== 'probing'")
    name = shot_name(url)
    page.screenshot(path=str(SHOTS / f"{name}-1280.png"), full_page=True)
    found = []
    widths = page.evaluate(WIDTHS)
    if widths[0] > widths[1]:  # a wide table scrolls inside itself, at 1280 px too
        found.append(f"scrolls sideways at 1280 px: {widths[0]} > {widths[1]} ({widths[2]})")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("() => window.innerWidth === 390")
    page.screenshot(path=str(SHOTS / f"{name}-390.png"), full_page=True)
    expected = 404 if url == "/no-such-page/" else 200
    if response.status != expected:
        found.append(f"HTTP {response.status}")
    widths = page.evaluate(WIDTHS)
    if widths[0] > widths[1]:
        found.append(f"scrolls sideways at 390 px: {widths[0]} > {widths[1]} ({widths[2]})")
    errors = [
        e for e in seen.console_errors if "404 (Not Found)" not in e or url != "/no-such-page/"
    ]
    if url.startswith("/map/") and errors[:1] == [TILE_PROBE_FAILED]:
        errors = errors[1:]  # the one probe of an offline tile server (tests have no internet)
    found += [f"CSP: {v}" for v in seen.csp_violations]
    found += [f"console: {e}" for e in errors if e not in seen.csp_violations]
    return found


@pytest.mark.browser
def test_every_page_in_the_browser(data, asgi_server, page):
    """No CSP violation or console error; nothing wider than 390 px; screenshots of each."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    seen = watch(page)
    page.goto(asgi_server + "/login/")
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 800})
        page.screenshot(path=str(SHOTS / f"login-{width}.png"), full_page=True)
    sign_in(page, asgi_server, "root")
    problems = {}
    for url in ["/"] + [u for u in pages(data) if u != "/"] + ["/no-such-page/"]:
        found = visit(page, seen, asgi_server + url, url)
        if found:
            problems[url] = found
    # The portal's pages, as its customer (a phone is the customer's first screen).
    page.context.clear_cookies()
    sign_in(page, asgi_server, data.world.customer.username, landing="/portal/")
    for url in pages(data, customer=True):
        found = visit(page, seen, asgi_server + url, url)
        if found:
            problems[url] = found
    assert not problems, "\n".join(f"{u}: {p}" for u, p in problems.items())


@pytest.mark.django_db
def test_admin_and_browsable_api_pages_have_the_policy_too(data):
    """The policy is the site's, not only our templates': the admin and the browsable API."""
    client = Client()
    client.force_login(data.world.superuser)
    meter = data.world.grid_a.meters[0]
    urls = {
        "/admin/": "*/*",
        "/admin/meters/meter/": "*/*",
        f"/admin/meters/meter/{meter.pk}/change/": "*/*",
        "/api/": "text/html",
        "/api/meters/": "text/html",
        f"/api/meters/{meter.pk}/": "text/html",
    }
    problems = {}
    for url, accept in urls.items():
        response = client.get(url, HTTP_ACCEPT=accept)
        found = [] if response.status_code == 200 else [f"HTTP {response.status_code}"]
        if "text/html" not in response.get("Content-Type", ""):
            found.append(f"not a page: {response.get('Content-Type')}")
        found += check_csp(response)
        found += inline_code(response.content.decode())
        if found:
            problems[url] = found
    assert not problems, "\n".join(f"{u}: {p}" for u, p in problems.items())
