"""ASGI entry point: HTTP through Django, websockets through Channels with session auth."""

import os
import threading

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "amisite.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (after Django setup)

from . import capacity  # noqa: E402
from .api_contract import declared_query_parameters  # noqa: E402
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


# Every view module and the API's query contract as soon as the worker starts, beside it
# rather than in its first requests: the URL configuration imports the whole site (the
# report engine brings numpy, scipy and scikit-learn), and the contract is the OpenAPI
# schema (seconds to generate, under a lock every API request of the worker waits at).
# Under load the first pages of a fresh worker queued behind both. On a thread of its own,
# so the worker listens as soon as before; a request that comes first waits for the same
# import or generation lock it always did.
# `warmed_up` is set when it is done (amisite.gcpolicy freezes what lives from then on).
warmed_up = threading.Event()


def _warm_up() -> None:
    import logging

    from django.urls import get_resolver

    try:
        get_resolver().url_patterns  # noqa: B018 (imported for its side effect)
        try:
            declared_query_parameters()
        except Exception:  # the first API request tries again, and says why
            logging.getLogger(__name__).exception("API query contract not generated at start")
    finally:
        warmed_up.set()


threading.Thread(target=_warm_up, name="ami-warm-up", daemon=True).start()
