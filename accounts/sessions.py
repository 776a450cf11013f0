"""Who a live connection belongs to, and telling its sockets when that changes.

A websocket is authorised once, when it opens; afterwards the user may sign out, be
deactivated, lose a role or change its password. `access_fingerprint` sums up
everything that decides what a user may see; the websocket base class
(`amisite/websocket.py`) closes a socket whose fingerprint changed, on a push from
`revoke_sockets` (sign-out, any write of a user) and at least every
`AMI_WS_RECHECK_SECONDS` anyway. The page reconnects and is authorised afresh.
"""

from __future__ import annotations

import hashlib

from asgiref.sync import async_to_sync
from django.db import transaction

from .models import User


def socket_group(user_id: int) -> str:
    return f"user-{user_id}"


def access_fingerprint(user_id: int, session_key: str | None) -> str | None:
    """A digest of what the user may see now; None when the session no longer stands."""
    from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.models import Session

    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return None
    if session_key is not None:
        session = Session.objects.filter(session_key=session_key).first()
        data = session.get_decoded() if session is not None else {}
        if str(data.get(SESSION_KEY)) != str(user_id):
            return None  # signed out (or the session now belongs to someone else)
        stored_hash = data.get(HASH_SESSION_KEY)
        if stored_hash and stored_hash != user.get_session_auth_hash():
            return None  # the password changed since
    parts = [
        str(user.is_superuser),
        str(user.is_staff),
        str(user.organisation_id),
        ",".join(map(str, sorted(user.groups.values_list("pk", flat=True)))),
        ",".join(map(str, sorted(user.user_permissions.values_list("pk", flat=True)))),
        user.password,
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def revoke_sockets(user_id: int) -> None:
    """After the current transaction commits, make every socket of the user re-check."""

    def send():
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(socket_group(user_id), {"type": "access.changed"})

    transaction.on_commit(send)
