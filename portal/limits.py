"""Slowing guesses down at the portal's guessable doors (activation, reset, confirmation).

A door is closed for a key (an account number, a meter serial, an e-mail address) after
`AMI_PORTAL_FAILURES_PER_KEY` failed tries within `AMI_PORTAL_FAILURE_WINDOW_MINUTES`, and
for a client address after `AMI_PORTAL_FAILURES_PER_ADDRESS` (any key). Every try is a row
(`portal.Attempt`), so the counts hold across processes and restarts; a success does not
wipe the failures (a guesser who also owns one account gains nothing).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from accounts.audit import client_ip

from .models import Attempt


def window() -> timedelta:
    return timedelta(minutes=getattr(settings, "AMI_PORTAL_FAILURE_WINDOW_MINUTES", 15))


def _normal(key: str) -> str:
    return str(key or "").strip().lower()[:200]


def blocked(request, kind: str, key: str, *, now=None) -> bool:
    """Whether `kind` is closed to this client or for this key (too many failures)."""
    now = now or timezone.now()
    recent = Attempt.objects.filter(kind=kind, succeeded=False, at__gte=now - window())
    per_key = getattr(settings, "AMI_PORTAL_FAILURES_PER_KEY", 5)
    per_address = getattr(settings, "AMI_PORTAL_FAILURES_PER_ADDRESS", 20)
    key = _normal(key)
    if key and recent.filter(key=key).count() >= per_key:
        return True
    return recent.filter(ip_address=client_ip(request)).count() >= per_address


def record(request, kind: str, key: str, succeeded: bool, *, now=None) -> None:
    Attempt.objects.create(
        kind=kind,
        key=_normal(key),
        ip_address=client_ip(request),
        at=now or timezone.now(),
        succeeded=succeeded,
    )
