"""Websocket origin check: the page that opens a socket must come from this very site.

Channels' `AllowedHostsOriginValidator` compares only the origin's host name with
`ALLOWED_HOSTS`, so `http://localhost:9999` (any local service, any scheme) passes. Here
the origin's scheme, host and port must equal the socket's own (`ws` pairs with `http`,
`wss` with `https`; the host from the `Host` header, which must be an allowed host), or
the origin must be listed exactly in `CSRF_TRUSTED_ORIGINS` (a site behind a TLS proxy that
the ASGI server does not see as TLS), the same rule Django's CSRF check applies to forms.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}
PAGE_SCHEME = {"ws": "http", "wss": "https"}


def _origin(scheme: str, host: str, port: int | None) -> tuple[str, str, int] | None:
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return scheme, host.lower(), port or DEFAULT_PORTS[scheme]


def parse_origin(value: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an Origin header or trusted origin; None if it is not one."""
    try:
        parts = urlsplit(value.strip())
        return _origin(parts.scheme.lower(), parts.hostname or "", parts.port)
    except ValueError:  # a port that is not a number
        return None


def socket_origin(scope) -> tuple[str, str, int] | None:
    """The origin a page on this site has, as seen by this socket (None: bad Host header)."""
    host = _header(scope, b"host")
    if host is None:
        return None
    domain, port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    scheme = PAGE_SCHEME.get(scope.get("scheme", "ws"), "http")
    try:
        return _origin(scheme, domain, int(port) if port else None)
    except ValueError:
        return None


def origin_allowed(scope) -> bool:
    value = _header(scope, b"origin")
    origin = parse_origin(value) if value else None
    if origin is None:
        return False
    if origin == socket_origin(scope):
        return True
    trusted = {parse_origin(o) for o in settings.CSRF_TRUSTED_ORIGINS}
    return origin in trusted - {None}


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return None


class SameOriginValidator:
    """ASGI middleware: refuse the websocket handshake unless `origin_allowed(scope)`."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            raise ValueError("SameOriginValidator only guards websockets")
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
