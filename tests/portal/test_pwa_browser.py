"""The portal as a phone app, in headless Chromium: accessible (axe-core on every portal
page: no serious or critical violation), installable (manifest, service worker), usable
offline (the last usage seen), and how many bytes of script and style each page loads.

The 390 px / no sideways scroll / CSP walk of the same pages is tests/pages/test_every_page.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.test import Client

from tests.pages.browser import sign_in
from tests.pages.site import make_page_data, pages

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "static" / "vendor" / "axe" / "axe.min.js"
BLOCKING = {"serious", "critical"}
RUN_AXE = """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
  .map(v => ({id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"""


@pytest.fixture
def phone(browser):
    """A phone-sized context; CSP bypassed only so the test can inject axe itself."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
    page = context.new_page()
    yield context, page
    context.close()


def portal_urls(data) -> list[str]:
    return pages(data, customer=True) + ["/portal/offline/"]


@pytest.mark.browser
def test_every_portal_page_passes_axe_and_reports_its_bytes(world, asgi_server, phone):
    data = make_page_data(world)
    context, page = phone
    for url in ("/portal/activate/", "/portal/account/reset/", "/login/"):  # signed out
        page.goto(asgi_server + url)
        page.add_script_tag(path=str(AXE))
        bad = [v for v in page.evaluate(RUN_AXE) if v["impact"] in BLOCKING]
        assert not bad, f"{url}: {bad}"
    sign_in(page, asgi_server, world.customer.username, landing="/portal/")
    problems, sizes = {}, {}
    for url in portal_urls(data):
        loaded = []

        def keep(response, loaded=loaded):
            loaded.append(response)

        page.on("response", keep)
        page.goto(asgi_server + url)
        page.wait_for_load_state("networkidle")
        page.remove_listener("response", keep)
        sizes[url] = {
            kind: sum(len(r.body()) for r in loaded if r.request.resource_type == kind and r.ok)
            for kind in ("script", "stylesheet")
        }
        page.add_script_tag(path=str(AXE))
        bad = [v for v in page.evaluate(RUN_AXE) if v["impact"] in BLOCKING]
        if bad:
            problems[url] = bad
    report = ROOT / "artifacts" / "portal_page_bytes.json"
    report.parent.mkdir(exist_ok=True)
    report.write_text(json.dumps(sizes, indent=1))
    print("portal page bytes (script, stylesheet):", json.dumps(sizes))
    assert not problems, json.dumps(problems, indent=1)


@pytest.mark.browser
def test_installable_and_offline_with_the_last_usage_seen(world, asgi_server, phone):
    from tests.portal.data import store_days

    store_days(world.grid_a.meters[0], days=40)
    context, page = phone
    sign_in(page, asgi_server, world.customer.username, landing="/portal/")
    page.goto(asgi_server + "/portal/usage/")
    assert page.evaluate("() => navigator.serviceWorker.ready.then(r => r.active.state)") in (
        "activating",
        "activated",
    )
    page.reload()  # now under the worker's control: this visit is kept
    page.wait_for_load_state("networkidle")
    seen = page.inner_text("#usage-period")
    context.set_offline(True)
    page.goto(asgi_server + "/portal/usage/")
    assert page.inner_text("#usage-period") == seen  # the last usage, offline
    page.goto(asgi_server + "/portal/bills/")
    assert "You are offline" in page.inner_text("main")
    context.set_offline(False)


def test_manifest_and_worker_are_served_for_the_portal(world):
    client = Client()
    manifest = client.get("/portal/manifest.webmanifest")
    assert manifest["Content-Type"] == "application/manifest+json"
    body = manifest.json()
    assert body["start_url"] == "/portal/" and body["display"] == "standalone"
    assert {icon["sizes"] for icon in body["icons"]} == {"192x192", "512x512"}
    for icon in body["icons"]:
        assert client.get(icon["src"]).status_code == 200
    worker = client.get("/portal/sw.js")
    assert worker["Content-Type"].startswith("application/javascript")
    assert worker["Service-Worker-Allowed"] == "/portal/"
    script = worker.content.decode()
    assert "/portal/offline/" in script and "caches.delete(PAGES)" in script
    html = Client().get("/portal/offline/").content.decode()
    assert "You are offline" in html and 'rel="manifest"' in html


@pytest.mark.browser
def test_a_receipt_keeps_its_columns_on_a_phone(world, asgi_server, phone):
    """The 48-column receipt is not wrapped mid-word at 390 px (it was: "NOR / TH-OFFICE")."""
    data = make_page_data(world)
    context, page = phone
    sign_in(page, asgi_server, world.customer.username, landing="/portal/")
    page.goto(f"{asgi_server}/portal/purchases/{data.sale.reference}/")
    lines = page.inner_text("pre.receipt").splitlines()
    fits = page.evaluate(
        """() => { const r = document.querySelector('pre.receipt');
                   const h = parseFloat(getComputedStyle(r).lineHeight);
                   return [r.scrollWidth <= r.clientWidth,
                           Math.round((r.clientHeight - parseFloat(getComputedStyle(r).paddingTop)
                                       - parseFloat(getComputedStyle(r).paddingBottom)) / h),
                           document.documentElement.scrollWidth]; }"""
    )
    assert fits[0], "the receipt is wider than the phone"
    assert fits[1] == len(lines), f"{fits[1]} rendered lines for {len(lines)} receipt lines"
    assert fits[2] <= 390
