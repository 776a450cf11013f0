"""The demo's second factor: staff and administrators enrolled with one TEST secret.

Their sign-in asks for a code after the password, as in production; `make run` prints the
secret, which an authenticator app takes, and `manage.py totp_code SECRET` prints the
current code. A TEST secret, like the demo's vending key: never use it for a real account.
"""

from __future__ import annotations

from . import two_factor
from .models import TotpDevice, User

# 20 bytes; base32 DEMO_TOTP_BASE32 below (printed by `make run`, in the README).
DEMO_TOTP_SECRET = "414d492d64656d6f2d746f74702d736563726574"  # "AMI-demo-totp-secret"
DEMO_TOTP_BASE32 = two_factor.base32(DEMO_TOTP_SECRET)


def load_demo_two_factor(demo) -> None:
    for user in User.objects.all():
        if two_factor.required(user):
            TotpDevice.objects.create(
                user=user, name="demo authenticator (TEST secret)", key=DEMO_TOTP_SECRET,
                confirmed=True,
            )  # fmt: skip
