"""Logging filters that keep the console for what an operator must act on."""

from __future__ import annotations

import logging

from .middleware import database_unavailable


class ClientErrors(logging.Filter):
    """`django.request` records of client errors, made quiet and short.

    A 404 is an ordinary wrong URL: not logged (DEBUG shows it). A 403 or other 4xx is one
    line: the traceback of the PermissionDenied that produced it says nothing about a fault.
    Server errors (5xx) pass untouched, with their traceback, except the 503 of an exhausted
    pool or an unavailable database, which `busy_response` has logged as one warning line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status == 503 and record.exc_info and database_unavailable(record.exc_info[1]):
            # Overload, already one warning line (amisite.middleware.busy_response), wherever
            # it was raised: a view, or a middleware that touched the session or the user.
            return False
        if status is None or not 400 <= status < 500:
            return True
        if status == 404:
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        record.exc_info = None
        record.exc_text = None
        return True
