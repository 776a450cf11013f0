"""API tokens: issued with an expiry, listed and revoked by their owner, bound to the password.

`issue_token` is the only way a token comes to be; `TokenAuthentication` is the only
way one is accepted: it refuses a token that is revoked, expired, of an inactive user,
or issued before the user's password last changed.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from rest_framework import authentication, exceptions

from . import audit, roles
from .models import ApiToken

CUSTOMER_REFUSED = "customers use the portal; the API is for the utility's staff and systems"


class CustomerRefused(Exception):
    """A token was asked for a customer (customers never get one)."""


def issue_token(user, *, name: str = "") -> tuple[ApiToken, str]:
    """A new token for `user`; returns it and its key (shown once, never stored).

    Raises `CustomerRefused` for a customer: the operator API is not theirs.
    """
    if roles.is_customer(user):
        raise CustomerRefused(CUSTOMER_REFUSED)
    key = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        prefix=key[:8],
        key_hash=ApiToken.hash_key(key),
        auth_hash=user.get_session_auth_hash(),
        expires_at=timezone.now() + timedelta(hours=settings.AMI_TOKEN_HOURS),
    )
    audit.record("token_issued", user=user, obj=token, changes={"expires": str(token.expires_at)})
    return token, key


def revoke_token(token: ApiToken, *, acting_user) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record("token_revoked", user=acting_user, obj=token)


def revoke_all(user, *, acting_user) -> int:
    """Revoke every live token of `user` (sign-out from the API everywhere)."""
    count = ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if count:
        audit.record("tokens_revoked", user=acting_user, obj=user, changes={"count": count})
    return count


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>` against ApiToken; anything but a live token is 401."""

    def authenticate_credentials(self, key):
        token = (
            ApiToken.objects.select_related("user").filter(key_hash=ApiToken.hash_key(key)).first()
        )
        if token is None or not token.active:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        user = token.user
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        if not constant_time_compare(token.auth_hash, user.get_session_auth_hash()):
            raise exceptions.AuthenticationFailed("The password changed since: sign in again.")
        if roles.is_customer(user):  # a token issued before customers were refused one
            raise exceptions.AuthenticationFailed(CUSTOMER_REFUSED)
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return user, token
