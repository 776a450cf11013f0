"""The sandbox provider: a checkout page inside the portal where the customer presses "pay"
or "decline" (the demo and tests; no money moves). Settles through the same path as a real
provider's webhook."""

from __future__ import annotations

from django.urls import reverse

from .base import BadSignature, Checkout, Provider


class SandboxProvider(Provider):
    name = "sandbox"

    def start(self, payment, *, return_url: str, cancel_url: str) -> Checkout:
        ref = f"sbx_{payment.reference.hex}"
        return Checkout(reverse("portal:pay-sandbox", args=[payment.reference]), ref)

    def parse_webhook(self, body: bytes, headers):
        raise BadSignature("the sandbox has no webhook: its page settles in the portal")
