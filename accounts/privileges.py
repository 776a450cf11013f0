"""Who may change which user: nobody hands out, or takes over, more than they hold.

A user's privileges are its permissions (from roles and raw grants), its scope (its
organisation and the organisations granted to it with guardian) and the staff/superuser
flags. A user other than a superuser may add, change or delete another user only when
that user's privileges, before and after the write, are all within its own:

- never itself, never a superuser, never a staff user unless it is staff itself;
- the target's organisation and every organisation granted to it lie in the actor's
  write scope;
- every role of the target is made only of permissions the actor has ("an administrator
  grants only roles it holds"; the administrator role holds every other role's
  permissions), and the target has no raw permission the actor lacks.

`UserQuerySet.restrict(actor, "add"|"change"|"delete")` applies this rule, so every door
that writes users through `restrict()` (admin, API, `actions.ensure_in_scope` after the
write) applies it without knowing it. The flags are the one thing a queryset cannot see
change: `SUPERUSER_ONLY_FIELDS` are compared before and after every write instead.
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q

from .roles import ROLE_PERMISSIONS
from .scoping import ScopedQuerySet, organisation_model, scope_paths

# Model fields nobody but a superuser may set or change, on any user (themselves included).
SUPERUSER_ONLY_FIELDS = ("is_superuser", "is_staff")
# Fields of the user model that nobody but a superuser may edit (the admin hides them).
SUPERUSER_ONLY_FORM_FIELDS = (*SUPERUSER_ONLY_FIELDS, "user_permissions")


def permission_ids(user) -> set[int]:
    """Every permission the user has through its roles and raw grants."""
    cache = user.__dict__.setdefault("_ami_permission_ids", {})
    if "ids" not in cache:
        cache["ids"] = set(
            Permission.objects.filter(Q(group__user=user) | Q(user=user)).values_list(
                "pk", flat=True
            )
        )
    return cache["ids"]


def foreign_permissions(user):
    """Permissions the user does not have (a subquery)."""
    return Permission.objects.exclude(pk__in=permission_ids(user))


def grantable_roles(user):
    """The role groups the user may hand out: those made only of permissions it has."""
    roles = Group.objects.filter(name__in=list(ROLE_PERMISSIONS))
    if user.is_superuser:
        return roles
    return roles.exclude(permissions__in=foreign_permissions(user))


def _organisations_in_write_scope(user) -> list[str]:
    """Primary keys (as guardian stores them: text) of the organisations the user may change."""
    paths = scope_paths(user, "change") or []
    if not paths:
        return []
    inside = (
        organisation_model(user)
        .objects.filter(reduce(or_, (Q(path__startswith=p) for p in paths)))
        .values_list("pk", flat=True)
    )
    return [str(pk) for pk in inside]


def not_above(queryset, user):
    """`queryset` (users) without the actor and anyone holding what the actor does not."""
    from guardian.models import UserObjectPermission

    if user.is_superuser:
        return queryset
    queryset = queryset.exclude(pk=user.pk).exclude(is_superuser=True)
    if not user.is_staff:
        queryset = queryset.exclude(is_staff=True)
    queryset = queryset.exclude(groups__in=Group.objects.exclude(pk__in=grantable_roles(user)))
    queryset = queryset.exclude(user_permissions__in=foreign_permissions(user))
    foreign_grants = (
        UserObjectPermission.objects.filter(
            content_type=ContentType.objects.get_for_model(organisation_model(user))
        )
        .exclude(object_pk__in=_organisations_in_write_scope(user))
        .values("user_id")
    )
    return queryset.exclude(pk__in=foreign_grants)


class UserQuerySet(ScopedQuerySet):
    """Users: seen in scope; written only when they are not above the actor."""

    def restrict(self, user, action: str = "view"):
        scoped = super().restrict(user, action)
        if action == "view" or not user or not user.is_authenticated:
            return scoped
        return not_above(scoped, user)


def superuser_only_change(obj, user, before: dict | None) -> str | None:
    """Why a write by a non-superuser may not stand (a superuser-only field moved), or None.

    `before` is `audit.snapshot(obj)` before the write (None: a new object, compared with
    the field defaults).
    """
    names = getattr(type(obj), "SUPERUSER_ONLY_FIELDS", ())
    if not names or (user and user.is_superuser):
        return None
    for name in names:
        field = obj._meta.get_field(name)
        old = before.get(name) if before is not None else str(field.get_default())
        if str(getattr(obj, field.attname)) != old:
            return f"only a superuser may change {field.verbose_name!r}"
    return None
