"""A person signs in to the dashboard in headless Chromium and sees the live home page."""

import pytest

from accounts.models import Organisation, User

pytestmark = pytest.mark.browser


def test_login_shows_dashboard_with_live_status(asgi_server, page):
    org = Organisation.objects.create(name="North Region", code="north")
    User.objects.create_user("north-operator", password="demo-north-pass", organisation=org)

    page.goto(asgi_server + "/")
    assert "/login/" in page.url
    page.fill("#id_username", "north-operator")
    page.fill("#id_password", "demo-north-pass")
    page.click("button[type=submit]")
    page.wait_for_url(asgi_server + "/")
    assert page.locator("h1").inner_text() == "Fleet at a glance"
    assert "North Region" in page.locator(".who").inner_text()
    # The status card goes live over the websocket.
    page.wait_for_function("() => document.getElementById('ws-state').textContent === 'live'")
    assert page.locator("#status-database").inner_text() in ("sqlite", "postgresql")


def test_wrong_password_is_refused(asgi_server, page):
    User.objects.create_user("someone", password="right-password-1")
    page.goto(asgi_server + "/login/")
    page.fill("#id_username", "someone")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    assert "didn't match" in page.locator(".error").inner_text()
