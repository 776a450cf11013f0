"""The one scoping mechanism: `Model.objects.restrict(user, action)` for every door.

A user sees rows whose organisation lies in their organisation's subtree, plus the subtrees
of organisations granted to them through django-guardian (`accounts.access_organisation`
to see, `accounts.operate_organisation` to change). On top of scope, the action needs the
model permission that the user's role (a Django group) gives. Out of scope is simply absent
from the queryset, so every door answers 404 for it.
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from django.db import models
from django.db.models import Q

ACTIONS = ("view", "add", "change", "delete")
GRANT_FOR_ACTION = {
    "view": "accounts.access_organisation",
    "add": "accounts.operate_organisation",
    "change": "accounts.operate_organisation",
    "delete": "accounts.operate_organisation",
}
NOTHING = Q(pk__in=[])


def organisation_model(user):
    """`Organisation`, reached through the user's own relation to it.

    `accounts/models.py` builds its querysets on this module, so this module cannot import
    the models; the user in hand leads to its organisation's model instead.
    """
    return user._meta.get_field("organisation").related_model


def scope_paths(user, action: str = "view") -> list[str] | None:
    """Organisation paths the user may act on (None = everything, for superusers)."""
    if not user or not user.is_authenticated or not user.is_active:
        return []
    if user.is_superuser:
        return None
    # On the user itself (through a request's lazy user, not on the proxy), where
    # accounts/access_cache.py fills it from, and takes it for, the shared cache.
    cache = getattr(user, "_ami_scope_paths", None)
    if cache is None:
        cache = {}
        user._ami_scope_paths = cache
    key = scope_key(action)
    if key not in cache:
        from guardian.shortcuts import get_objects_for_user

        organisations = organisation_model(user)
        paths = []
        if user.organisation_id:
            paths.append(organisations.objects.get(pk=user.organisation_id).path)
        granted = get_objects_for_user(
            user, GRANT_FOR_ACTION[action], klass=organisations, with_superuser=False
        )
        paths.extend(granted.values_list("path", flat=True))
        cache[key] = outermost(paths)
    return cache[key]


def scope_key(action: str) -> str:
    """Which of a user's two scopes `action` needs: "view", or "write" for the others."""
    return "view" if action == "view" else "write"


def outermost(paths) -> list[str]:
    """The paths, sorted, without those inside another one (a shorter filter, same rows)."""
    paths = sorted(set(paths))
    return [p for p in paths if not any(p != q and p.startswith(q) for q in paths)]


def has_model_perm(user, model, action: str) -> bool:
    opts = model._meta
    return user.has_perm(f"{opts.app_label}.{action}_{opts.model_name}")


def scope_q(user, model, action: str = "view", field: str | None = None) -> Q:
    """The filter for `model` rows the user may `action`; `field` leads to the organisation."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if not user or not user.is_authenticated or not has_model_perm(user, model, action):
        return NOTHING
    paths = scope_paths(user, action)
    if paths is None:
        return Q()
    if not paths:
        return NOTHING
    field = model.scope_field if field is None else field
    prefix = f"{field}__path" if field else "path"
    return reduce(or_, (Q(**{f"{prefix}__startswith": p}) for p in paths))


def org_within_scope(user, organisation, action: str = "change") -> bool:
    """Whether `organisation` lies inside what the user may act on (the re-check after writes)."""
    if organisation is None:
        return bool(user and user.is_superuser)
    paths = scope_paths(user, action)
    return paths is None or any(organisation.path.startswith(p) for p in paths)


class ScopedQuerySet(models.QuerySet):
    """QuerySet with `restrict(user, action)`; the model says where its organisation is."""

    def restrict(self, user, action: str = "view"):
        return self.filter(scope_q(user, self.model, action))


class CatalogueQuerySet(ScopedQuerySet):
    """Catalogue rows (meter models, tariffs): seen below their owner, changed only in scope.

    A meter model defined by the utility is visible to every region office below it; a
    region may add its own, which the utility's staff see too.
    """

    def restrict(self, user, action: str = "view"):
        q = scope_q(user, self.model, action)
        if action != "view" or q == NOTHING or not q:
            return self.filter(q)
        paths = scope_paths(user, "view") or []
        ancestors = {int(pk) for p in paths for pk in p.strip("/").split("/") if pk}
        return self.filter(q | Q(organisation_id__in=ancestors))
