"""A busy or unreachable database is a 503 with Retry-After, never a 500 traceback.

Two kinds of moment, both passing, neither a bug:
- overload: every connection of the process's pool stays taken for `DB_POOL_TIMEOUT`
  seconds and psycopg_pool raises `PoolTimeout` (Django hands it on as an `OperationalError`
  caused by it);
- a database that is away or changing hands: the primary died and Patroni has not promoted
  the replica yet (connection refused or reset, "the database system is shutting down"),
  or a connection still reaches the demoted server, now read-only (SQLSTATE 25006), or a
  transaction lost a serialization or deadlock race (40001, 40P01).
The client is told to come back shortly (a payment system's retry then lands on the new
primary), and the log gets one warning line instead of a traceback. A programming error
(bad SQL, a constraint) is still a 500 with its traceback.
"""

from __future__ import annotations

import logging

from django.http import HttpResponse, JsonResponse

logger = logging.getLogger("amisite.busy")

RETRY_AFTER_S = 5
MESSAGE = "The system is busy. Please try again in a few seconds."


# SQLSTATE classes and codes of a database that is away, read-only or lost a race.
TRANSIENT_SQLSTATES = ("08", "57P", "25006", "40001", "40P01")


def _transient(exc: BaseException) -> bool:
    try:
        import psycopg
        from psycopg_pool import PoolTimeout
    except ImportError:  # SQLite only: no pool, no failover
        return False
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, psycopg.Error):
        return False
    state = getattr(exc, "sqlstate", None)
    if state is None:  # raised by the client: refused, reset, closed, no answer
        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    return state.startswith(TRANSIENT_SQLSTATES)


def database_unavailable(exc: BaseException | None) -> bool:
    """True when `exc` is, or was caused by, an exhausted pool or a database that is
    unreachable, shutting down, read-only (a demoted primary) or lost a transaction race."""
    seen = 0
    while exc is not None and seen < 5:
        if _transient(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def busy_response(request) -> HttpResponse:
    """503 with Retry-After: JSON for the API, a short page for people."""
    logger.warning("database busy or unavailable: 503 for %s %s", request.method, request.path)
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
    """Turns an exhausted pool or an unavailable database, raised by a view or its template,
    into a 503 (elsewhere in the request: the 500 handler, `amisite.views.server_error`)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if database_unavailable(exception):
            return busy_response(request)
        return None
