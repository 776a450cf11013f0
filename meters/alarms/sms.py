"""SMS backends behind one small contract, chosen by one URL (`AMI_SMS_URL`):

    console://                          print to stdout (development)
    file:///var/lib/ami/sms.jsonl       append one JSON line per message (development, tests)
    smpp://system_id:password@host:2775?source=AMI&system_type=
                                        an SMSC over SMPP 3.4 (smpplib), bind_transmitter
    http://gateway/path  https://...    POST JSON {"to", "from", "text"} to an HTTP gateway,
                                        bearer token from AMI_SMS_TOKEN; 2xx is accepted

`send(to, text)` returns the gateway's message id (or "") and raises `SmsError` saying
whether a retry can help.
"""

from __future__ import annotations

import json
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qs, unquote, urlsplit

import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.gsm
from django.conf import settings


class SmsError(Exception):
    """Sending failed; `retryable` says whether trying again later can help."""

    def __init__(self, message: str, *, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


class SmsBackend:
    def send(self, to: str, text: str) -> str:  # pragma: no cover - the contract
        raise NotImplementedError


class ConsoleBackend(SmsBackend):
    def send(self, to: str, text: str) -> str:
        sys.stdout.write(f"SMS to {to}: {text}\n")
        sys.stdout.flush()
        return ""


@dataclass
class FileBackend(SmsBackend):
    path: str
    _lock = threading.Lock()

    def send(self, to: str, text: str) -> str:
        with self._lock, open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"to": to, "text": text}) + "\n")
        return ""


@dataclass
class HttpBackend(SmsBackend):
    url: str
    sender: str = ""
    token: str = ""
    timeout: float = 10.0

    def send(self, to: str, text: str) -> str:
        body = json.dumps({"to": to, "from": self.sender, "text": text}).encode()
        request = urllib.request.Request(self.url, data=body, method="POST")
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                reply = response.read(4096)
        except urllib.error.HTTPError as exc:
            # 4xx other than throttling: the gateway refuses this message for good.
            retryable = exc.code >= 500 or exc.code == 429
            raise SmsError(f"gateway answered {exc.code}", retryable=retryable) from None
        except (urllib.error.URLError, OSError) as exc:
            raise SmsError(f"gateway unreachable: {exc}") from None
        try:
            return str(json.loads(reply or b"{}").get("id", ""))[:100]
        except (ValueError, AttributeError):
            return ""


# SMPP command statuses after which the same message may succeed later.
SMPP_RETRYABLE = {0x08, 0x14, 0x58, 0x45}  # system error, queue full, throttled, submit failed


@dataclass
class SmppBackend(SmsBackend):
    host: str
    port: int
    system_id: str
    password: str
    source: str = "AMI"
    system_type: str = ""
    timeout: float = 10.0

    def send(self, to: str, text: str) -> str:
        client = smpplib.client.Client(
            self.host, self.port, timeout=self.timeout, allow_unknown_opt_params=True
        )
        try:
            client.connect()
            client.bind_transmitter(
                system_id=self.system_id, password=self.password, system_type=self.system_type
            )
            parts, coding, esm_class = smpplib.gsm.make_parts(text)
            ids = []
            for part in parts:
                client.send_message(
                    source_addr_ton=smpplib.consts.SMPP_TON_ALNUM,
                    source_addr_npi=smpplib.consts.SMPP_NPI_UNK,
                    source_addr=self.source,
                    dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                    dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
                    destination_addr=to.lstrip("+"),
                    short_message=part,
                    data_coding=coding,
                    esm_class=esm_class,
                    registered_delivery=False,
                )
                resp = client.read_pdu()
                if resp.is_error():
                    status = int(resp.status)
                    raise SmsError(
                        f"SMSC refused submit_sm (status 0x{status:02x})",
                        retryable=status in SMPP_RETRYABLE,
                    )
                message_id = getattr(resp, "message_id", b"") or b""
                ids.append(message_id.decode() if isinstance(message_id, bytes) else message_id)
            try:
                client.unbind()
            except (smpplib.exceptions.ConnectionError, OSError):
                pass  # the message is accepted; a lost unbind changes nothing
            return ",".join(i for i in ids if i)[:100]
        except smpplib.exceptions.PDUError as exc:
            code = exc.args[1] if len(exc.args) > 1 else 0x08
            raise SmsError(f"SMPP error: {exc.args[0]}", retryable=code in SMPP_RETRYABLE) from None
        except (TimeoutError, smpplib.exceptions.ConnectionError, OSError) as exc:
            raise SmsError(f"SMSC unreachable: {exc!r}") from None
        finally:
            try:
                client.disconnect()
            except Exception:  # noqa: BLE001 - closing a broken socket must not hide the cause
                pass


def backend_from_url(url: str, token: str = "") -> SmsBackend:
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.scheme == "console":
        return ConsoleBackend()
    if parts.scheme == "file":
        return FileBackend(unquote(parts.path))
    if parts.scheme == "smpp":
        return SmppBackend(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 2775,
            system_id=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            source=query.get("source", "AMI"),
            system_type=query.get("system_type", ""),
            timeout=float(query.get("timeout", 10)),
        )
    if parts.scheme in ("http", "https"):
        return HttpBackend(url=url, sender=query.get("source", ""), token=token)
    raise ValueError(f"unknown SMS backend URL scheme {parts.scheme!r}")


@lru_cache(maxsize=8)
def _cached(url: str, token: str) -> SmsBackend:
    return backend_from_url(url, token)


def get_backend() -> SmsBackend:
    """The configured backend (settings AMI_SMS_URL, AMI_SMS_TOKEN)."""
    return _cached(
        getattr(settings, "AMI_SMS_URL", "console://"), getattr(settings, "AMI_SMS_TOKEN", "")
    )
