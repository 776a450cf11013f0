"""Users, the organisation tree and the activity log."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models

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
