"""Scoped writes shared by every door: save or delete one object, re-check scope, audit it."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.utils.module_loading import import_string

from . import audit, privileges
from .choices import Outcome
from .scoping import org_within_scope
from .sessions import revoke_sockets


class OutOfScope(PermissionDenied):
    """The write would put the object outside what the user may change."""


def ensure_in_scope(obj: models.Model, user, action: str) -> None:
    """Re-check after a write: the object must still be within the user's scope for `action`."""
    model = type(obj)
    if not model.objects.restrict(user, action).filter(pk=obj.pk).exists():
        raise OutOfScope(f"{model._meta.verbose_name} would be outside your organisation's scope")


def ensure_relations_in_scope(obj: models.Model, user, fields) -> None:
    """Re-check after a write: each of `fields` that is a relation points only in scope.

    The form's choices already say so; this is the backstop for a form that forgets.
    """
    for name in fields:
        try:
            field = obj._meta.get_field(name)
        except Exception:  # noqa: BLE001 - a form-only field
            continue
        if not field.is_relation or field.related_model is None or obj.pk is None:
            continue
        scoped = field.related_model._default_manager.all()
        if not hasattr(scoped, "restrict"):
            continue  # a global catalogue (roles, permissions)
        if field.many_to_many:
            chosen = list(getattr(obj, name).values_list("pk", flat=True))
        elif field.concrete:
            value = getattr(obj, field.attname)
            chosen = [] if value is None else [value]
        else:
            continue
        visible = scoped.restrict(user, "view").filter(pk__in=list(chosen)).count()
        if visible != len(set(chosen)):
            raise OutOfScope(f"{field.verbose_name}: not found")


def save_object(obj: models.Model, *, acting_user, before: dict | None = None) -> models.Model:
    """Create or update `obj` atomically, re-check its scope, and write one audit row.

    `before` is `audit.snapshot(obj)` taken before the caller changed it (None: a new object).
    """
    with transaction.atomic():
        obj.save()
        record_saved(obj, acting_user=acting_user, before=before)
    return obj


def record_saved(obj: models.Model, *, acting_user, before: dict | None) -> None:
    """For an object just saved by the caller (e.g. a serializer): re-check scope, audit.

    Call inside the transaction that saved it: an object outside the user's scope raises
    OutOfScope and the caller's transaction rolls the save back.
    """
    action = "add" if before is None else "change"
    ensure_in_scope(obj, acting_user, action)
    refused = privileges.superuser_only_change(obj, acting_user, before)
    if refused:
        raise OutOfScope(refused)
    access_may_have_changed(obj)
    audit.record(
        "create" if action == "add" else "update",
        user=acting_user,
        obj=obj,
        changes=audit.diff(before, audit.snapshot(obj)),
    )


def create_organisation(organisation, *, acting_user=None):
    """Create an organisation (an unsaved `Organisation`) and set it up: every door calls this.

    Setting up is what other apps give a new organisation (its default alarm rules, ...):
    the functions named in settings' `AMI_ORGANISATION_SETUP`, each called as
    `step(organisation, acting_user=...)` in the same transaction. They are named in settings,
    not imported, because accounts depends on no other app. Without an acting user (the demo,
    a migration) scope is not checked.
    """
    with transaction.atomic():
        if acting_user is None:
            organisation.save()
            audit.record(
                "create", obj=organisation, changes=audit.diff(None, audit.snapshot(organisation))
            )
        else:
            save_object(organisation, acting_user=acting_user)
        for step in settings.AMI_ORGANISATION_SETUP:
            import_string(step)(organisation, acting_user=acting_user)
    return organisation


def access_may_have_changed(obj: models.Model) -> None:
    """A user was written: its open websockets re-check themselves after the commit."""
    if obj._meta.label_lower == "accounts.user" and obj.pk is not None:
        revoke_sockets(obj.pk)


def delete_object(obj: models.Model, *, acting_user) -> None:
    access_may_have_changed(obj)
    with transaction.atomic():
        ensure_in_scope(obj, acting_user, "delete")
        audit.record("delete", user=acting_user, obj=obj, changes=audit.snapshot(obj))
        obj.delete()


def record_denied(user, action: str, obj: models.Model | None = None, detail: str = "") -> None:
    """Log a refused attempt (permission denied) outside any transaction that will roll back."""
    audit.record(action, user=user, obj=obj, outcome=Outcome.DENIED, detail=detail)


def grant_organisation(user, organisation, *, write: bool, acting_user) -> None:
    """Give one user access to another organisation's subtree (a guardian grant, audited)."""
    from guardian.shortcuts import assign_perm

    if not org_within_scope(acting_user, organisation, "change"):
        raise OutOfScope("you can only grant access within your own scope")
    ensure_in_scope(user, acting_user, "change")  # not oneself, nobody above oneself
    with transaction.atomic():
        assign_perm("accounts.access_organisation", user, organisation)
        if write:
            assign_perm("accounts.operate_organisation", user, organisation)
        audit.record(
            "grant",
            user=acting_user,
            obj=organisation,
            changes={"user": user.username, "write": write},
        )
