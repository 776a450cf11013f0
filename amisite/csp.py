"""The Content-Security-Policy header on every response: no inline script, style or handler.

Pages load their scripts and styles only from our own static files (`static/js/`,
`static/css/`, vendored libraries), so the policy needs no `unsafe-inline` and no nonce. The
map's tile server (`AMI_MAP_TILES`) is the only other origin, for images. `connect-src 'self'`
covers the page's own websockets (CSP level 3: 'self' matches ws:/wss: on the same host).
"""

from __future__ import annotations

from functools import cache
from urllib.parse import urlsplit

from django.conf import settings

HEADER = "Content-Security-Policy"


def tile_origin(template: str) -> str | None:
    """`https://tile.example.org` from a tile URL template; None for our own host."""
    parts = urlsplit(template.replace("{s}", "a"))
    if not parts.scheme or not parts.netloc:
        return None
    host = parts.netloc
    if "{" in host:  # a per-subdomain template ({s}.tile...) is allowed as a wildcard
        host = "*." + host.split(".", 1)[1]
    return f"{parts.scheme}://{host}"


@cache
def policy(tiles: str) -> str:
    images = ["'self'", "data:"]
    origin = tile_origin(tiles)
    if origin:
        images.append(origin)
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": images,
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


class ContentSecurityPolicyMiddleware:
    """Adds the policy to every response that does not set its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if HEADER not in response:
            response[HEADER] = policy(settings.MAP_TILES_URL)
        return response
