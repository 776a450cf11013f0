"""Users, the organisation tree and the activity log."""

from __future__ import annotations

import hashlib
import json
import time

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django_otp.models import Device, ThrottlingMixin
from django_otp.oath import TOTP

from amisite.encryption import EncryptedTextField
from amisite.tree import TreeNode

from .choices import Outcome
from .privileges import SUPERUSER_ONLY_FIELDS, UserQuerySet
from .scoping import ScopedQuerySet


class Organisation(TreeNode):
    """A unit of the utility (utility > region office > district ...) that owns grid subtrees."""

    name = models.CharField(max_length=200)
    code = models.SlugField(max_length=50, unique=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = ""  # an organisation is scoped by its own path

    class Meta:
        ordering = ["path"]
        permissions = [
            ("access_organisation", "Can see this organisation's subtree (granted per user)"),
            ("operate_organisation", "Can change this organisation's subtree (granted per user)"),
        ]

    def __str__(self) -> str:
        return self.name


class ScopedUserManager(UserManager.from_queryset(UserQuerySet)):
    """Django's user manager with `restrict()` (writes: only users not above the actor)."""


class User(AbstractUser):
    """A person who signs in: operator, engineer, analyst, clerk, administrator or customer."""

    organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    phone = models.CharField(max_length=32, blank=True)

    objects = ScopedUserManager()
    scope_field = "organisation"
    SECRET_FIELDS = ("password",)  # the hash never reaches the activity log
    SUPERUSER_ONLY_FIELDS = SUPERUSER_ONLY_FIELDS  # accounts/privileges.py

    class Meta:
        ordering = ["username"]

    def set_password(self, raw_password):
        super().set_password(raw_password)
        # Saved later, whichever door changed it (own page, admin, API): the activity log
        # hears of it then (accounts/audit.py). A re-hash on sign-in is no change.
        if not self.__dict__.get("_ami_checking_password"):
            self._ami_password_changed = True

    def check_password(self, raw_password):
        self._ami_checking_password = True
        try:
            return super().check_password(raw_password)
        finally:
            del self._ami_checking_password


class ActivityLog(models.Model):
    """One state-changing action: who did what to what, when, from where, with what outcome."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    username = models.CharField(max_length=150, blank=True)  # kept when the user is deleted
    organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS)
    detail = models.TextField(blank=True)

    objects = ScopedQuerySet.as_manager()
    scope_field = "organisation"

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.object_repr}"

    def change_lines(self) -> list[str]:
        """`changes` as text, one line per key, whatever its shape: a `[before, after]` pair
        reads "key: before → after", anything else "key: value" (JSON)."""
        changes = self.changes
        if not isinstance(changes, dict):
            return [_as_text(changes)] if changes not in (None, "", [], {}) else []
        lines = []
        for key, value in changes.items():
            if isinstance(value, list) and len(value) == 2:
                before, after = (_as_text(v) or "∅" for v in value)
                lines.append(f"{key}: {before} → {after}")
            else:
                lines.append(f"{key}: {_as_text(value)}")
        return lines


def _as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


class ApiToken(models.Model):
    """An API credential of one user: expires, can be revoked, dies with a password change.

    Only a SHA-256 of the key is stored (the key is shown once, when issued). A token is
    bound to the user's password as it was when issued (`auth_hash`, as Django binds a
    session), so changing the password anywhere ends every token by construction.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=8)  # shown in lists, to tell tokens apart
    key_hash = models.CharField(max_length=64, unique=True)
    auth_hash = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @property
    def active(self) -> bool:
        from django.utils import timezone

        return self.revoked_at is None and self.expires_at > timezone.now()


class TotpDevice(ThrottlingMixin, Device):
    """A user's authenticator app (TOTP, RFC 6238): the second factor of staff sign-ins.

    The shared secret is encrypted at rest; `last_t` refuses a code used before (replay),
    and failed codes slow further tries down (django-otp's throttling).
    """

    key = EncryptedTextField(help_text="hex; never displayed once stored")
    last_t = models.BigIntegerField(default=-1)

    SECRET_FIELDS = ("key",)

    class Meta:
        verbose_name = "TOTP device"
        verbose_name_plural = "TOTP devices"

    def get_throttle_factor(self) -> int:
        return 1

    def verify_token(self, token) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed or not str(token).isdigit():
            return False
        totp = TOTP(bytes.fromhex(self.key))
        totp.time = time.time()
        verified = totp.verify(int(token), tolerance=1, min_t=self.last_t + 1)
        if verified:
            self.last_t = totp.t()
            self.throttle_reset(commit=False)
            self.save()
        else:
            self.throttle_increment()
        return verified


class RecoveryCode(models.Model):
    """A one-time code that stands in for the authenticator (only its SHA-256 is stored)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"recovery code of {self.user}" + (" (used)" if self.used_at else "")

    @staticmethod
    def hash_code(code: str) -> str:
        normal = code.replace("-", "").replace(" ", "").upper()
        return hashlib.sha256(normal.encode()).hexdigest()
