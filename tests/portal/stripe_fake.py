"""A loopback server speaking the part of Stripe's HTTP API the portal uses, for tests.

`POST /v1/checkout/sessions` (form-encoded, bearer secret key, Idempotency-Key honoured as
Stripe does: the same key answers the same session) and signed webhook events built the
way Stripe documents them (`Stripe-Signature: t=<time>,v1=<HMAC-SHA256 of "t.body">`),
signed here with its own code, not the portal's.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

SECRET_KEY = "sk_test_portal_fake"
WEBHOOK_SECRET = "whsec_portal_fake"


class FakeStripe:
    def __init__(self):
        self.sessions: dict[str, dict] = {}
        self.by_key: dict[str, str] = {}
        self.requests: list[dict] = []
        self._ids = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802 - http.server's name
                form = dict(
                    parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode())
                )
                fake.requests.append(
                    {"path": self.path, "form": form, "headers": dict(self.headers)}
                )
                if self.headers.get("Authorization") != f"Bearer {SECRET_KEY}":
                    return self._answer(401, {"error": {"type": "invalid_request_error"}})
                if self.path != "/v1/checkout/sessions":
                    return self._answer(404, {"error": {"type": "invalid_request_error"}})
                key = self.headers.get("Idempotency-Key")
                if key in fake.by_key:
                    return self._answer(200, fake.sessions[fake.by_key[key]])
                amount = form.get("line_items[0][price_data][unit_amount]", "")
                if form.get("mode") != "payment" or not amount.isdigit():
                    return self._answer(400, {"error": {"type": "invalid_request_error"}})
                sid = f"cs_test_{next(fake._ids):04d}"
                session = {
                    "id": sid, "object": "checkout.session", "mode": "payment",
                    "url": f"{fake.url}/c/pay/{sid}", "amount_total": int(amount),
                    "currency": form.get("line_items[0][price_data][currency]"),
                    "client_reference_id": form.get("client_reference_id"),
                    "payment_status": "unpaid", "status": "open",
                }  # fmt: skip
                fake.sessions[sid] = session
                if key:
                    fake.by_key[key] = sid
                return self._answer(200, session)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def event(
        self, sid: str, kind: str, *, paid: bool = True, amount: int | None = None,
        secret: str = WEBHOOK_SECRET, at: int | None = None,
    ) -> tuple[bytes, str]:  # fmt: skip
        """(body, Stripe-Signature header) of an event about session `sid`."""
        session = dict(self.sessions[sid], payment_status="paid" if paid else "unpaid")
        if amount is not None:
            session["amount_total"] = amount
        body = json.dumps({
            "id": f"evt_{sid}_{kind}", "object": "event", "type": kind,
            "data": {"object": session},
        }).encode()  # fmt: skip
        stamp = at or int(time.time())
        mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        return body, f"t={stamp},v1={mac}"
