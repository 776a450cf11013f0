"""The second factor (TOTP) of staff and administrators (issue 12, item 10).

These tests sign in through the forms, as a person does: the password, then a code.
"""

from __future__ import annotations

import base64
import io
import re

import pytest
from asgiref.sync import sync_to_async
from channels.testing.websocket import WebsocketCommunicator
from django.core.management import call_command
from django.db import connection, connections
from django.test import Client
from rest_framework.test import APIClient

from accounts import two_factor
from accounts.demo import DEMO_TOTP_BASE32, DEMO_TOTP_SECRET
from accounts.models import ActivityLog, RecoveryCode, TotpDevice
from amisite.asgi import application

pytestmark = pytest.mark.django_db
SECRET = "00112233445566778899aabbccddeeff00112233"


def password_only(user) -> Client:
    client = Client()
    answer = client.post("/login/", {"username": user.username, "password": "pw-" + user.username})
    assert answer.status_code == 302, answer.content
    return client


def enrolled(user, secret=SECRET) -> TotpDevice:
    return TotpDevice.objects.create(user=user, name="phone", key=secret, confirmed=True)


@pytest.mark.parametrize("who", ["admin_a", "engineer_a", "superuser"])
def test_password_alone_reaches_nothing_for_staff(world, who):
    user = getattr(world, who)
    enrolled(user)
    client = password_only(user)
    for path in ("/", "/meters/", "/admin/", "/account/tokens/", "/api/meters/"):
        answer = client.get(path)
        assert answer.status_code in (302, 403), (path, answer.status_code)
        if answer.status_code == 302:
            assert answer["Location"].startswith("/account/two-factor/"), path
    assert client.post("/account/tokens/", {"name": "x"}).status_code == 302
    assert not user.api_tokens.exists()


def test_a_code_signs_in_once_and_a_used_code_is_refused(world):
    user = world.admin_a
    enrolled(user)
    client = password_only(user)
    code = two_factor.code_now(SECRET)
    answer = client.post("/account/two-factor/", {"code": code, "next": "/admin/"})
    assert answer.status_code == 302 and answer["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get("/meters/").status_code == 200
    # The same code again, in a new sign-in, is a replay.
    other = password_only(user)
    assert other.post("/account/two-factor/", {"code": code}).status_code == 302
    assert other.get("/").status_code == 302
    assert ActivityLog.objects.filter(action="two_factor_failed", user=user).exists()


def test_an_open_redirect_is_not_followed(world):
    enrolled(world.admin_a)
    client = password_only(world.admin_a)
    answer = client.post(
        "/account/two-factor/",
        {"code": two_factor.code_now(SECRET), "next": "https://evil.example/"},
    )
    assert answer["Location"] == "/"


def test_enrolment_qr_code_confirm_and_recovery_codes(world):
    user = world.admin_a
    client = password_only(user)
    assert client.get("/").url.startswith("/account/two-factor/enrol/")
    page = client.get("/account/two-factor/enrol/")
    html = page.content.decode()
    qr = html.split('id="totp-qr">')[1].split("</figure>")[0]
    assert page.status_code == 200 and qr.startswith("<svg")
    assert "<script" not in qr and "src=" not in qr and "style" not in qr  # drawn here
    assert "unsafe-inline" not in page["Content-Security-Policy"]
    key = re.search(r'id="totp-secret">([A-Z2-7]+)<', html).group(1)
    secret = base64.b32decode(key + "=" * (-len(key) % 8)).hex()  # what the app scans
    signed = re.search(r'name="secret" value="([^"]+)"', html).group(1)
    assert secret not in signed  # signed, and shown only as the key
    assert client.post("/account/two-factor/enrol/", {"code": "000000", "secret": signed})[
        "Location"
    ].startswith("/account/two-factor/enrol/")
    forged = {"code": two_factor.code_now(SECRET), "secret": SECRET}
    assert client.post("/account/two-factor/enrol/", forged).status_code == 302
    assert not TotpDevice.objects.filter(user=user).exists()
    done = client.post(
        "/account/two-factor/enrol/", {"code": two_factor.code_now(secret), "secret": signed}
    )
    codes = re.findall(r"<code>([A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4})</code>",
                       done.content.decode())  # fmt: skip
    assert len(codes) == 10
    assert client.get("/admin/").status_code == 200  # enrolling verified this session
    stored = TotpDevice.objects.get(user=user)
    assert stored.confirmed and stored.key == secret
    # Recovery codes: only hashes are stored; each signs in once.
    hashes = set(RecoveryCode.objects.filter(user=user).values_list("code_hash", flat=True))
    assert not hashes & set(codes) and len(hashes) == 10
    first = password_only(user)
    assert first.post("/account/two-factor/", {"code": codes[0].lower()}).status_code == 302
    assert first.get("/admin/").status_code == 200
    again = password_only(user)
    again.post("/account/two-factor/", {"code": codes[0]})
    assert again.get("/admin/").status_code == 302


def test_the_secret_is_encrypted_at_rest(world):
    enrolled(world.admin_a)
    with connection.cursor() as cursor:
        cursor.execute("SELECT key FROM accounts_totpdevice")
        (stored,) = cursor.fetchone()
    assert SECRET not in stored


def test_a_password_alone_cannot_replace_the_authenticator(world):
    enrolled(world.admin_a)
    client = password_only(world.admin_a)
    answer = client.get("/account/two-factor/enrol/")
    assert answer.status_code == 302 and answer["Location"].startswith("/account/two-factor/?")


def test_users_whose_role_needs_no_second_factor_sign_in_with_the_password(world):
    client = password_only(world.operator_a)
    assert client.get("/meters/").status_code == 200
    assert not two_factor.required(world.operator_a)
    assert two_factor.required(world.admin_a) and two_factor.required(world.superuser)


def test_api_tokens_for_staff_need_the_code(world):
    user = world.admin_a
    api = APIClient()
    body = {"username": user.username, "password": "pw-" + user.username}
    no_device = api.post("/api/token/", body)
    assert no_device.status_code == 403 and "enrol" in no_device.json()["detail"]
    enrolled(user)
    assert api.post("/api/token/", body).status_code == 403
    code = two_factor.code_now(SECRET)
    issued = api.post("/api/token/", {**body, "otp": code})
    assert issued.status_code == 200, issued.content
    assert api.post("/api/token/", {**body, "otp": code}).status_code == 403  # replayed
    assert api.post("/api/token/", {**body, "otp": "123456"}).status_code == 403
    assert user.api_tokens.count() == 1
    operator = {"username": world.operator_a.username, "password": "pw-operator-a"}
    assert api.post("/api/token/", operator).status_code == 200  # no second factor needed


def test_the_demo_secret_and_its_command_line_code(world):
    out = io.StringIO()
    call_command("totp_code", DEMO_TOTP_BASE32, stdout=out)
    assert out.getvalue().strip() == two_factor.code_now(DEMO_TOTP_SECRET)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_websockets_need_the_second_factor_too(world):
    """A password-only session of an administrator opens no websocket; past the code it does."""
    await sync_to_async(enrolled)(world.admin_a)
    client = await sync_to_async(password_only)(world.admin_a)
    try:
        for verified in (False, True):
            if verified:
                code = await sync_to_async(two_factor.code_now)(SECRET)
                await sync_to_async(client.post)("/account/two-factor/", {"code": code})
            cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
            headers = [(b"origin", b"http://localhost"), (b"host", b"localhost"),
                       (b"cookie", cookie)]  # fmt: skip
            ws = WebsocketCommunicator(application, "/ws/alarms/", headers=headers)
            connected, _ = await ws.connect(timeout=5)
            if connected:
                first = await ws.receive_output(timeout=5)
                connected = first["type"] != "websocket.close"
            assert connected == verified
            await ws.disconnect()
    finally:
        await sync_to_async(connections.close_all)()
