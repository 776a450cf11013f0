"""ASGI entry point: HTTP through Django, websockets through Channels with session auth."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "amisite.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (after Django setup)

from . import capacity  # noqa: E402
from .routing import websocket_urlpatterns  # noqa: E402
from .webgate import RequestGate  # noqa: E402
from .websocket import socket_auth  # noqa: E402
from .websocket_origin import SameOriginValidator  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": RequestGate(
            django_asgi_app,
            limit=capacity.web_threads(),
            queue_timeout=capacity.web_queue_timeout(),
        ),
        "websocket": SameOriginValidator(socket_auth(URLRouter(websocket_urlpatterns))),
    }
)

# Every view module now, in the worker's start, rather than in its first requests: the URL
# configuration imports the whole site (the report engine brings numpy, scipy and
# scikit-learn: seconds of imports under the import lock, which every other request
# thread of the worker queued behind while the first pages of a busy worker waited).
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018 (imported for its side effect)
