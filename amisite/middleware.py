"""A busy database is a 503 with Retry-After, never a 500 traceback.

When every connection of the process's pool stays taken for `DB_POOL_TIMEOUT` seconds,
psycopg_pool raises `PoolTimeout` (Django hands it on as an `OperationalError` caused by
it). That is overload, not a bug: the client is told to come back shortly, and the log gets
one warning line instead of a traceback.
"""

from __future__ import annotations

import logging

from django.http import HttpResponse, JsonResponse

logger = logging.getLogger("amisite.busy")

RETRY_AFTER_S = 5
MESSAGE = "The system is busy. Please try again in a few seconds."


def pool_exhausted(exc: BaseException | None) -> bool:
    """True when `exc` is, or was caused by, a connection pool that stayed exhausted."""
    try:
        from psycopg_pool import PoolTimeout
    except ImportError:  # no pool without psycopg_pool
        return False
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, PoolTimeout):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def busy_response(request) -> HttpResponse:
    """503 with Retry-After: JSON for the API, a short page for people."""
    logger.warning("database pool exhausted: 503 for %s %s", request.method, request.path)
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": MESSAGE}, status=503)
    else:
        response = HttpResponse(
            f"<!doctype html><title>Busy</title><h1>Busy</h1><p>{MESSAGE}</p>",
            status=503,
            content_type="text/html; charset=utf-8",
        )
    response["Retry-After"] = str(RETRY_AFTER_S)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseBusyMiddleware:
    """Turns an exhausted connection pool, raised by a view or its template, into a 503."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if pool_exhausted(exception):
            return busy_response(request)
        return None
