"""The second factor (TOTP) of staff and administrators, enforced by role.

Who needs it: superusers, staff (admin site users) and holders of the administrator role.
After the password, such a user's session is *signed in but not verified*: every page,
the admin site, the session API and token issuing send it to confirm a code from its
authenticator (or a one-time recovery code), or to enrol one first. The mark lives in the
session (`SESSION_KEY`, the user's id), so a new sign-in starts unverified; API tokens are
issued to these users only with a code (`POST /api/token/` with `otp`).

Secrets are stored encrypted (`TotpDevice.key`); recovery codes only as SHA-256 hashes,
and each works once. QR codes are drawn on the server (segno, inline SVG): no CDN, no
script.
"""

from __future__ import annotations

import base64
import secrets
from urllib.parse import quote, urlencode

import segno
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import TOTP

from . import audit, roles
from .choices import Outcome
from .models import RecoveryCode, TotpDevice

SESSION_KEY = "ami_second_factor"
# Set on the request by a middleware before ours that asks for the factor on its own pages
# (the portal's door, for customers): ours then lets the request pass.
DOOR_ATTRIBUTE = "ami_second_factor_door"
ISSUER = "AMI head-end"
RECOVERY_CODES = 10
# Paths a signed-in but unverified user may still reach (the factor's own pages, sign-out).
OPEN_PREFIXES = ("/login/", "/logout/", "/account/two-factor/", "/static/", "/healthz", "/favicon")


def required(user) -> bool:
    """Whether `user` must confirm a second factor: superusers, staff and administrators,
    and anyone who chose to enrol an authenticator (customers may, in the portal)."""
    if not user or not user.is_authenticated:
        return False
    if user.is_superuser or user.is_staff:
        return True
    if user.groups.filter(name=roles.ADMINISTRATOR).exists():
        return True
    return TotpDevice.objects.filter(user=user, confirmed=True).exists()


def device_of(user) -> TotpDevice | None:
    return TotpDevice.objects.filter(user=user, confirmed=True).first()


def is_verified(request) -> bool:
    """Past the second factor in this session, or not asked for one."""
    user = request.user
    if request.session.get(SESSION_KEY) == user.pk:
        return True
    if not required(user):
        request.session[SESSION_KEY] = user.pk  # asked once per session
        return True
    return False


def session_verified(session, user) -> bool:
    """The same question for a session outside a request (websockets); never writes."""
    return session.get(SESSION_KEY) == user.pk or not required(user)


def mark_verified(request) -> None:
    request.session.cycle_key()
    request.session[SESSION_KEY] = request.user.pk


def new_secret() -> str:
    """A fresh TOTP secret (160 bits, hex, as stored)."""
    return secrets.token_hex(20)


def base32(secret_hex: str) -> str:
    return base64.b32encode(bytes.fromhex(secret_hex)).decode().rstrip("=")


def otpauth_uri(user, secret_hex: str) -> str:
    label = quote(f"{ISSUER}:{user.get_username()}")
    query = urlencode({"secret": base32(secret_hex), "issuer": ISSUER})
    return f"otpauth://totp/{label}?{query}"


def qr_svg(text: str) -> str:
    """An inline SVG QR code of `text` (drawn here: no CDN, no script, no inline style)."""
    return segno.make(text, error="m").svg_inline(scale=4, border=2, dark="#000", light="#fff")


def code_now(secret_hex: str) -> str:
    """The current 6-digit code of a secret (tests and the demo's command line)."""
    return f"{TOTP(bytes.fromhex(secret_hex)).token():06d}"


def _new_recovery_codes(user) -> list[str]:
    RecoveryCode.objects.filter(user=user).delete()
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = base64.b32encode(secrets.token_bytes(10)).decode()  # 80 bits, 16 characters
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    RecoveryCode.objects.bulk_create(
        RecoveryCode(user=user, code_hash=RecoveryCode.hash_code(code)) for code in codes
    )
    return codes


def enrol(user, secret_hex: str, code: str, *, acting_user=None) -> list[str] | None:
    """Confirm a new authenticator with a code it shows; returns fresh recovery codes.

    None if the code does not match the secret (nothing is stored then). Enrolling again
    replaces the user's authenticator and recovery codes.
    """
    code = str(code).strip()
    totp = TOTP(bytes.fromhex(secret_hex))
    if not code.isdigit() or not totp.verify(int(code), tolerance=1):
        return None
    with transaction.atomic():
        TotpDevice.objects.filter(user=user).delete()
        TotpDevice.objects.create(
            user=user, name="authenticator", key=secret_hex, confirmed=True, last_t=totp.t()
        )
        codes = _new_recovery_codes(user)
        audit.record("two_factor_enrolled", user=acting_user or user, obj=user)
    return codes


def verify(user, code: str) -> bool:
    """A code from the user's authenticator, or one of its unused recovery codes (spent)."""
    code = str(code or "").strip()
    if not code:
        return False
    device = device_of(user)
    if code.isdigit() and device is not None:
        if device.verify_token(code):
            return True
    else:
        spent = RecoveryCode.objects.filter(
            user=user, code_hash=RecoveryCode.hash_code(code), used_at__isnull=True
        ).update(used_at=timezone.now())
        if spent:
            audit.record("recovery_code_used", user=user, obj=user)
            return True
    audit.record("two_factor_failed", user=user, obj=user, outcome=Outcome.DENIED)
    return False


class SecondFactorMiddleware:
    """Sends a signed-in, unverified staff or administrator session to the second factor."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if getattr(request, DOOR_ATTRIBUTE, False):
            return self.get_response(request)  # a door before this one asks for the factor
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(OPEN_PREFIXES)
            and not is_verified(request)
        ):
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {"detail": "confirm your second factor first: /account/two-factor/"},
                    status=403,
                )
            page = "accounts:two-factor" if device_of(user) else "accounts:two-factor-enrol"
            return redirect(f"{reverse(page)}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)
