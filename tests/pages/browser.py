"""Helpers for the page tests in headless Chromium: sign in, count loads, collect the console."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

from django.db import connection

from accounts import two_factor
from accounts.models import TotpDevice, User

BROWSER_TOTP_SECRET = "62726f777365722d746573742d7365637265742d"  # a TEST secret


def sign_in(page, server: str, username: str, landing: str = "/") -> None:
    """Sign in through the login form as a factory user (password `pw-<name>`).

    `landing`: where the sign-in ends (a customer is sent on from the home to the portal).

    Staff and administrators then confirm a code of their authenticator (enrolled here with
    a TEST secret if they have none), as a person does.
    """
    user = User.objects.get(username=username)
    device = None
    if two_factor.required(user):
        device = TotpDevice.objects.filter(user=user, confirmed=True).first()
        if device is None:
            device = TotpDevice.objects.create(
                user=user, name="browser test", key=BROWSER_TOTP_SECRET, confirmed=True
            )
    page.goto(server + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-" + username)
    page.click("button[type=submit]")
    if device is not None:
        page.wait_for_url(re.compile(r".*/account/two-factor/.*"))
        page.fill("#id_code", two_factor.code_now(device.key))
        page.click("#two-factor-form button[type=submit]")
    page.wait_for_url(server + landing)


@dataclass
class Watch:
    """What a page did: its loads, its websockets, its console errors and CSP violations."""

    loads: list[str] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)


def watch(page) -> Watch:
    seen = Watch()
    page.on("load", lambda: seen.loads.append(page.url))
    page.on("websocket", lambda ws: seen.websockets.append(ws.url))

    def console(msg):
        text = msg.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            seen.csp_violations.append(text)
        if msg.type == "error":
            seen.console_errors.append(text)

    page.on("console", console)
    return seen


def in_worker_thread(fn, *args):
    """As a worker would: Playwright's loop owns this thread, and on_commit sends sync."""

    def run():
        try:
            fn(*args)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
