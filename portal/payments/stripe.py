"""Stripe Checkout as a payment provider, over Stripe's documented HTTP API (no SDK).

* Start: `POST {api}/v1/checkout/sessions` (form-encoded, `Authorization: Bearer <secret
  key>`, `Idempotency-Key: portal-<reference>` so a retried start makes no second session):
  mode=payment, one line item priced in minor units, `client_reference_id` = the payment's
  reference, success and cancel URLs. The answer's `id` (cs_...) is kept, its `url` is
  where the customer pays.
* Settle: the webhook `checkout.session.completed` (with `payment_status` = paid) or
  `checkout.session.async_payment_succeeded` pays; `checkout.session.expired` and
  `checkout.session.async_payment_failed` fail. Every notification is verified first: the
  `Stripe-Signature` header `t=<unix time>,v1=<hex>` where v1 = HMAC-SHA256(webhook
  secret, "<t>.<raw body>"), within `TOLERANCE` seconds of now; any v1 may match (Stripe
  sends several while a secret is rolled).

Settings: AMI_STRIPE_SECRET_KEY, AMI_STRIPE_WEBHOOK_SECRET, AMI_STRIPE_API (default
https://api.stripe.com; tests point it at a loopback server speaking the same API).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.parse
import urllib.request

from django.conf import settings

from .base import BadSignature, Checkout, Outcome, Provider, ProviderError, minor_units

TOLERANCE = 300
PAID_EVENTS = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
FAILED_EVENTS = {"checkout.session.expired", "checkout.session.async_payment_failed"}


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify(secret: str, header: str, body: bytes, *, now: float | None = None) -> None:
    """BadSignature unless `header` signs `body` with `secret`, recently."""
    if not secret:
        raise BadSignature("no webhook secret configured")
    parts = [p.split("=", 1) for p in (header or "").split(",") if "=" in p]
    stamps = [v for k, v in parts if k.strip() == "t"]
    given = [v for k, v in parts if k.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit() or not given:
        raise BadSignature("malformed Stripe-Signature header")
    timestamp = int(stamps[0])
    if abs((now or time.time()) - timestamp) > TOLERANCE:
        raise BadSignature("timestamp outside the tolerance")
    expected = signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, v.strip()) for v in given):
        raise BadSignature("no signature matches")


class StripeProvider(Provider):
    name = "stripe"

    def __init__(self, *, api: str | None = None, secret_key: str | None = None,
                 webhook_secret: str | None = None, timeout: float = 15.0):  # fmt: skip
        self.api = (api or getattr(settings, "AMI_STRIPE_API", "https://api.stripe.com")).rstrip(
            "/"
        )
        self.secret_key = (
            secret_key if secret_key is not None else getattr(settings, "AMI_STRIPE_SECRET_KEY", "")
        )
        self.webhook_secret = (
            webhook_secret if webhook_secret is not None
            else getattr(settings, "AMI_STRIPE_WEBHOOK_SECRET", "")
        )  # fmt: skip
        self.timeout = timeout

    def start(self, payment, *, return_url: str, cancel_url: str) -> Checkout:
        if not self.secret_key:
            raise ProviderError("online payment is not set up (no Stripe key)")
        form = {
            "mode": "payment",
            "success_url": return_url,
            "cancel_url": cancel_url,
            "client_reference_id": str(payment.reference),
            "metadata[reference]": str(payment.reference),
            "line_items[0][quantity]": "1",
            "line_items[0][price_data][currency]": payment.currency.lower(),
            "line_items[0][price_data][unit_amount]": str(minor_units(payment.amount)),
            "line_items[0][price_data][product_data][name]": (
                f"Prepaid electricity, meter {payment.account.meter_number}"
            ),
        }
        request = urllib.request.Request(
            f"{self.api}/v1/checkout/sessions",
            data=urllib.parse.urlencode(form).encode(),
            method="POST",
            headers={
                "Authorization": f"Bearer {self.secret_key}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Idempotency-Key": f"portal-{payment.reference}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - configured https URL
                session = json.loads(response.read(1_000_000))
        except urllib.error.HTTPError as exc:
            raise ProviderError(f"the payment provider refused the payment ({exc.code})") from None
        except (urllib.error.URLError, OSError, ValueError):
            raise ProviderError("the payment provider could not be reached: try again") from None
        if not isinstance(session, dict) or not session.get("id") or not session.get("url"):
            raise ProviderError("the payment provider answered without a checkout")
        return Checkout(str(session["url"]), str(session["id"]))

    def parse_webhook(self, body: bytes, headers) -> Outcome:
        verify(self.webhook_secret, headers.get("Stripe-Signature", ""), body)
        try:
            event = json.loads(body)
            kind = event["type"]
            session = event["data"]["object"]
            ref = str(session["id"])
        except (ValueError, KeyError, TypeError):
            raise BadSignature("not a Stripe event") from None
        amount = session.get("amount_total")
        currency = str(session.get("currency") or "").upper()
        if kind in PAID_EVENTS and session.get("payment_status") == "paid":
            return Outcome(ref, True, True, amount, currency)
        if kind in FAILED_EVENTS:
            return Outcome(ref, False, True, amount, currency, reason=kind)
        return Outcome(ref, False, False, amount, currency, reason=kind)
