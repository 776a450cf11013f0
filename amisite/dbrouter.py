"""Reads that may be a few seconds stale go to the streaming replica, everything else to the
primary (docs/operations.md, "Read replica").

A GET under one of `AMI_REPLICA_PATHS` (reports, the portal's usage graphs) marks its request
(`ReplicaReadsMiddleware`); while marked, reads of the registry, the store, collection and
vending tables use the `replica` database, when one is configured. Accounts, sessions,
permissions and audit always read the primary: a user who just signed in or was just granted
something must be seen at once. Writes and migrations always go to the primary.
"""

from __future__ import annotations

import contextvars

from django.conf import settings

REPLICA = "replica"
# Apps whose tables a marked request may read from the replica.
REPLICA_APPS = frozenset({"meters", "collection", "vending", "reports", "portal", "loadcontrol"})

_reading_replica: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "reading_replica", default=False
)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        if (
            _reading_replica.get()
            and model._meta.app_label in REPLICA_APPS
            and replica_configured()
        ):
            return REPLICA
        return None  # the default database

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica holds the same rows as the primary

    def allow_migrate(self, db, app_label, **hints):
        return db != REPLICA  # a replica follows the primary's schema through WAL


class ReplicaReadsMiddleware:
    """Marks GET/HEAD requests under `AMI_REPLICA_PATHS` as reading from the replica."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.paths = tuple(getattr(settings, "AMI_REPLICA_PATHS", ()))

    def __call__(self, request):
        marked = (
            request.method in ("GET", "HEAD")
            and request.path.startswith(self.paths)
            and replica_configured()
        )
        token = _reading_replica.set(marked)
        try:
            return self.get_response(request)
        finally:
            _reading_replica.reset(token)
