"""Project-level views that belong to no app."""

import sys

from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles.storage import staticfiles_storage
from django.db import connection
from django.http import HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import render
from django.views.defaults import server_error as default_server_error

from collection.consumers import SNAPSHOT_SECONDS, snapshot
from meters.rollup_cache import ttl as rollup_ttl

from .middleware import busy_response, database_unavailable
from .observability import readiness


def server_error(request):
    """The 500 handler: an exhausted pool or an unavailable database outside a view (a
    middleware touching the session or the user) is still a 503 (`amisite.middleware`)."""
    if database_unavailable(sys.exc_info()[1]):
        return busy_response(request)
    return default_server_error(request)


def healthz(request):
    """Liveness for load balancers: answers 200 when the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def readyz(request):
    """Readiness: 200 when this instance can serve (database, migrations applied, Redis),
    else 503 naming what is missing, so a load balancer sends traffic elsewhere meanwhile."""
    ready, checks = readiness()
    response = JsonResponse({"status": "ready" if ready else "not ready", "checks": checks})
    if not ready:
        response.status_code = 503
        response["Retry-After"] = "5"
    response["Cache-Control"] = "no-store"
    return response


@login_required
def home(request):
    """The operator's home: fleet health at a glance, updated live over the status websocket.

    The first paint carries the same scoped snapshot the websocket sends (so the page is
    useful without scripts); `static/js/home.js` then keeps it current. A customer signs in
    to the same form and never gets here: the customer's door (`portal/door.py`, a
    middleware) sends "/" on to the portal, from the answer it keeps in the session, so
    this page no longer asks the database again on every visit.
    """
    return render(
        request,
        "home.html",
        {
            "status": snapshot(request.user),
            "rollup_seconds": rollup_ttl(),
            "snapshot_seconds": SNAPSHOT_SECONDS,
        },
    )


def favicon(request):
    """Browsers ask for /favicon.ico on pages without a link to it (admin, API docs)."""
    return HttpResponsePermanentRedirect(staticfiles_storage.url("favicon.ico"))
