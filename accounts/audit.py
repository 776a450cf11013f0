"""The activity log: one row per state-changing action, written through `record()` only.

The request's address reaches `record()` through a context variable set by
`AuditContextMiddleware`, so actions deep in the code need not carry the request.
"""

from __future__ import annotations

import contextvars
import ipaddress
from typing import Any

from django.contrib.auth import signals as auth_signals
from django.db import models
from django.db.models.signals import post_save

from .choices import Outcome
from .models import ActivityLog, User

_client_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ami_client_ip", default=None
)
_request: contextvars.ContextVar[Any] = contextvars.ContextVar("ami_request", default=None)
MASK = "***"


def _trusted(address: str) -> bool:
    from django.conf import settings

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.AMI_TRUSTED_PROXIES)


def client_ip(request) -> str | None:
    """The client's address: the peer, unless the peer is a proxy named in
    `AMI_TRUSTED_PROXIES`; then the nearest X-Forwarded-For hop that is not such a proxy.

    The one answer to "who is this" for the activity log and the sign-in lockout (axes
    calls it too). A header from anyone else is ignored: a client cannot pick its address.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    if not remote or not _trusted(remote):
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for hop in reversed([h for h in hops if h]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return remote  # a proxy we trust wrote garbage: the proxy is all we know
        if not _trusted(hop):
            return hop
    return remote


class ProxyHeadersMiddleware:
    """`X-Forwarded-Proto` counts only from a proxy named in `AMI_TRUSTED_PROXIES`.

    Django believes `SECURE_PROXY_SSL_HEADER` from any peer; a client talking to the server
    directly could then pass for HTTPS (secure-only cookies, SSL redirect, CSRF's referer
    check). From anyone else the header is dropped before any of that reads it.
    """

    HEADER = "HTTP_X_FORWARDED_PROTO"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self.HEADER in request.META and not _trusted(request.META.get("REMOTE_ADDR", "")):
            del request.META[self.HEADER]
        return self.get_response(request)


class AuditContextMiddleware:
    """Remembers the client address and the request (its user) for the activity log."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _client_ip.set(client_ip(request))
        request_token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(request_token)
            _client_ip.reset(token)


def snapshot(obj: models.Model) -> dict[str, Any]:
    """Field values of `obj` as text, secrets masked, for before/after comparison."""
    secret_fields = set(getattr(obj, "SECRET_FIELDS", ()))
    values = {}
    for field in obj._meta.concrete_fields:
        value = getattr(obj, field.attname)
        if field.name in secret_fields:
            value = MASK if value else ""
        values[field.name] = "" if value is None else str(value)
    # Rows whose state lives partly in a row of their own (a meter's endpoint) add it here.
    extra = getattr(obj, "audit_fields", None)
    if extra is not None:
        values.update(extra())
    return values


def diff(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, list]:
    if before is None:
        return {k: [None, v] for k, v in after.items() if v not in ("", None)}
    return {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}


def record(action: str, **fields) -> ActivityLog:
    """Write one activity row (`entry`'s fields). The caller is inside the action's
    transaction where it has one."""
    row = entry(action, **fields)
    row.save(force_insert=True)
    return row


def record_many(entries: list[ActivityLog]) -> list[ActivityLog]:
    """Write many rows built by `entry` in one statement (a batch of meter commands)."""
    return ActivityLog.objects.bulk_create(entries, batch_size=1000)


def entry(
    action: str,
    *,
    user=None,
    obj: models.Model | None = None,
    changes: dict | None = None,
    outcome: str = Outcome.SUCCESS,
    detail: str = "",
    organisation=None,
    ip: str | None = None,
    username: str = "",
) -> ActivityLog:
    """One activity row as `record` writes it, not saved yet (see `record_many`)."""
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    if organisation is None and obj is not None:
        organisation = getattr(obj, "organisation", None)
        if organisation is None and obj._meta.model_name == "organisation":
            organisation = obj
    if organisation is None and authenticated:
        organisation = user.organisation
    return ActivityLog(
        user=user if authenticated else None,
        username=(user.get_username() if authenticated else username)[:150],
        organisation=organisation,
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        changes=changes or {},
        ip_address=ip or _client_ip.get(),
        outcome=outcome,
        detail=detail[:2000],
    )


def _on_login(sender, request, user, **kwargs):
    record("login", user=user, ip=client_ip(request) if request else None)


def _on_logout(sender, request, user, **kwargs):
    if user is not None:
        record("logout", user=user, ip=client_ip(request) if request else None)


def _on_login_failed(sender, credentials, request=None, **kwargs):
    # Only the user name is kept: never the password that was tried.
    record(
        "login_failed",
        username=str(credentials.get("username", ""))[:150],
        outcome=Outcome.FAILED,
        ip=client_ip(request) if request is not None else None,
    )


def _on_user_saved(sender, instance, created, **kwargs):
    # Every door that changes a password (own page, admin forms, user API) ends in save().
    if instance.__dict__.pop("_ami_password_changed", False) and not created:
        request = _request.get()
        actor = getattr(request, "user", None) if request is not None else None
        acting = actor if actor is not None and actor.is_authenticated else instance
        record("password_changed", user=acting, obj=instance)


def connect_auth_signals() -> None:
    """Sign-in events come from Django's auth signals, password changes from the user's save:
    the one signal-based audit source."""
    post_save.connect(_on_user_saved, sender=User, dispatch_uid="ami-audit-password")
    auth_signals.user_logged_in.connect(_on_login, dispatch_uid="ami-audit-login")
    auth_signals.user_logged_out.connect(_on_logout, dispatch_uid="ami-audit-logout")
    auth_signals.user_login_failed.connect(_on_login_failed, dispatch_uid="ami-audit-login-failed")
