"""A signed-in user's permissions and organisation scope, kept between requests in Redis.

Every page used to ask PostgreSQL the same questions before its own work: the user's
permissions (its own and its roles', two queries), its organisation's path and the
organisations granted to it (two more, twice on pages that also check what the user may
change), and its organisation's row (every page's header names it). `AccessCacheMiddleware`
puts the answers on the request's user from the cache and stores what a request had to
compute, so a user pays for them once, not on every page. When the entry is missing or
stale, `compute` answers permissions and both scopes in one statement.

When an entry may be used:
- **Same generation.** One counter for the whole site, bumped by every change that can
  change an answer: a role (group) or permission saved or deleted, a role's permissions,
  a user's roles or own permissions changed, an organisation grant (guardian object
  permission) given or taken, an organisation saved (moved) or deleted. It is bumped at
  once and again after the transaction commits: a request that read the old rows while
  the change was being committed may have stored them under the first bump, never under
  the second. Such changes are rare (administration), so one counter for everyone is
  simpler and safer than working out whom a change concerns.
- **Same user row.** The entry is keyed by the fields of the user's row that decide access
  (active, superuser, staff, organisation, when it joined), and that row is read from the
  database on every request anyway: a deactivation or a move to another organisation
  counts at once, whichever way it was written (SQL included).
- **Not older than `AMI_ACCESS_CACHE_SECONDS`** (60, as `AMI_WS_RECHECK_SECONDS`): a role or
  grant changed behind the application's back (SQL, a bulk insert, a restored database)
  counts within that, and at once when a websocket's periodic re-check notices it first
  (it bumps the generation). Each entry is kept for a random 50-100 % of that
  (`entry_seconds`): with one time for all, the entries of users whose browsers came
  together (2,000 sockets after a restart) ran out together, and every minute the socket
  process computed 1,000 users' permissions and scope again within ~20 s (0.45-0.55 cores
  instead of ~0.2, bench/web_load.py). The range spans more than one of the status sockets'
  20-s snapshots, so each user's next computation lands one snapshot earlier now and then
  and the crowd spreads over the minute (a range within one snapshot, 70-100 %, kept the
  wave: the miss still fell on the third snapshot). They come ~15-30 % more often in all.

The cache is Django's, which is Redis whenever `REDIS_URL` is set, so every web process
sees one generation; without Redis (one-process tools) it is off (`AMI_ACCESS_CACHE_SECONDS`
= 0). Superusers need none of it (they may do everything without a query).
"""

from __future__ import annotations

import hashlib
import logging
import random
from contextlib import contextmanager

from django.conf import settings
from django.contrib.auth.middleware import get_user
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import connection, models, router, transaction
from django.db.models.functions import Concat
from django.utils.functional import SimpleLazyObject, empty
from guardian.models import GroupObjectPermission, UserObjectPermission

from .models import Organisation, User
from .per_user_sql import run_for_user
from .scoping import GRANT_FOR_ACTION, outermost, scope_key
from .sessions import grant_rows, tagged

log = logging.getLogger("accounts.access_cache")
SCOPE_ATTR = "_ami_scope_paths"  # accounts/scoping.py keeps a request's scope here
PERM_ATTR = "_perm_cache"  # django.contrib.auth.backends.ModelBackend keeps them here
ORGANISATION_FIELDS = ("id", "parent_id", "path", "name", "code")


def enabled() -> bool:
    return settings.AMI_ACCESS_CACHE_SECONDS > 0


def entry_seconds() -> int:
    """How long one entry is kept: a random 50-100 % of AMI_ACCESS_CACHE_SECONDS, in whole
    seconds (at least one), so entries stored together do not run out together."""
    return max(1, round(settings.AMI_ACCESS_CACHE_SECONDS * random.uniform(0.5, 1.0)))


def _generation_key() -> str:
    # The database's name: the suite, the benches and the site may share one Redis.
    return f"ami:access:{connection.settings_dict['NAME']}:generation"


def _user_key(user_id: int) -> str:
    return f"ami:access:{connection.settings_dict['NAME']}:user:{user_id}"


def _row(user) -> str:
    """What of the user's own row decides its access (read fresh on every request)."""
    parts = (user.pk, user.is_active, user.is_superuser, user.is_staff, user.organisation_id,
             user.date_joined.isoformat() if user.date_joined else "")  # fmt: skip
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def bump() -> None:
    """Every cached entry is stale from now on (see the module's docstring for when)."""
    if not enabled():
        return
    key = _generation_key()
    try:
        try:
            cache.incr(key)
        except ValueError:  # not there yet (or evicted): any new value differs from entries'
            cache.add(key, 1, timeout=None)
            cache.incr(key)
    except Exception as exc:  # Redis away: the change itself must not fail for it
        log.warning("access cache: generation not bumped (%s: %s)", type(exc).__name__, exc)


def bump_now_and_after_commit() -> None:
    bump()
    transaction.on_commit(bump)


class Primed:
    """What a request's user got from the cache, to store what it computed besides."""

    __slots__ = ("key", "generation", "row", "stored")

    def __init__(self, key, generation, row, stored):
        self.key, self.generation, self.row, self.stored = key, generation, row, stored


def prime(user) -> Primed | None:
    """Fill the user's permission and scope caches from the shared cache, if valid."""
    if not enabled() or not user.is_authenticated or user.is_superuser:
        return None
    key, generation_key = _user_key(user.pk), _generation_key()
    try:
        got = cache.get_many([key, generation_key])
    except Exception as exc:  # Redis away: the request asks the database, as without cache
        log.warning("access cache unavailable (%s: %s)", type(exc).__name__, exc)
        return None
    generation, entry, row = got.get(generation_key, 0), got.get(key), _row(user)
    stored = {}
    if entry is not None and entry["generation"] == generation and entry["row"] == row:
        stored = entry["values"]
    if "perms" in stored and "scope" in stored:
        setattr(user, PERM_ATTR, set(stored["perms"]))
        setattr(user, SCOPE_ATTR, dict(stored["scope"]))
    elif user.is_active:
        compute(user)  # after reading the generation: kept under it, as a request's would be
    organisation = stored.get("organisation")
    if organisation and organisation.get("id") == user.organisation_id:
        # The page header's "name · organisation": one query less on every page.
        names = list(organisation)
        own = Organisation.from_db("default", names, [organisation[n] for n in names])
        User.organisation.field.set_cached_value(user, own)
    return Primed(key, generation, row, stored)


def compute(user) -> None:
    """Put the user's permissions and both scopes on it, from one statement.

    The same answers as Django's ModelBackend (the user's own and its roles' model
    permissions) and `scoping.scope_paths` (its organisation's path and its grants', by
    guardian's rules), which asked them in five statements, each compiled by the ORM: ~3 ms
    of CPU (5-8 ms under load) every time a user's entry ran out, 20-30 times a second for
    1,000 operators' status sockets. tests/accounts/test_access_compute.py holds the two
    ways to the same answers for every kind of holding."""
    organisations = ContentType.objects.get_for_model(Organisation).pk
    rows = run_for_user(
        ("access", organisations),
        router.db_for_read(User),
        lambda user_id: _access_query(user_id, organisations),
        user.pk,
        places=5,  # one per part of the union
    )
    perms, own, granted = set(), [], {}
    for kind, item in rows:
        if kind == "permission":
            perms.add(item)
        elif kind == "organisation":
            own.append(item)
        elif item is not None:  # a grant (by codename) on an organisation that still exists
            granted.setdefault(kind, []).append(item)
    setattr(user, PERM_ATTR, perms)
    scope = {}
    for action in ("view", "change"):
        codename = GRANT_FOR_ACTION[action].split(".", 1)[1]
        scope[scope_key(action)] = outermost(own + granted.get(codename, []))
    setattr(user, SCOPE_ATTR, scope)


def _access_query(user_id: int, organisations: int) -> models.QuerySet:
    """The ORM's form of `compute`'s statement: (kind, item) rows, "permission" with
    "app_label.codename" (the user's and its roles'), "organisation" with the user's
    organisation's path, and a grant's codename with the granted organisation's path."""
    text = models.CharField()
    name = Concat("content_type__app_label", models.Value("."), "codename", output_field=text)
    return tagged(Permission.objects.filter(user=user_id), "permission", name).union(
        tagged(Permission.objects.filter(group__user=user_id), "permission", name),
        tagged(Organisation.objects.filter(users=user_id), "organisation", models.F("path")),
        *grant_rows(user_id, organisations),
        all=True,
    )


def store(user, primed: Primed) -> None:
    """Keep what this request computed (under the generation read before computing it)."""
    values = {}
    perms = getattr(user, PERM_ATTR, None)
    if perms is not None:
        values["perms"] = sorted(perms)
    scope = getattr(user, SCOPE_ATTR, None)
    if scope:
        values["scope"] = dict(scope)
    field = User.organisation.field
    if user.organisation_id and field.is_cached(user):
        organisation = field.get_cached_value(user)
        values["organisation"] = {f: getattr(organisation, f) for f in ORGANISATION_FIELDS}
    if values and values != primed.stored:
        entry = {"generation": primed.generation, "row": primed.row, "values": values}
        try:
            cache.set(primed.key, entry, timeout=entry_seconds())
        except Exception as exc:
            log.warning("access cache: entry not kept (%s: %s)", type(exc).__name__, exc)


@contextmanager
def primed(user):
    """Outside a request (a websocket's periodic work): `user`'s permissions and scope from
    the cache on entry, what was computed meanwhile kept on exit, under the same rules as a
    request's (same generation, same user row, `AMI_ACCESS_CACHE_SECONDS`)."""
    entry = prime(user) if user is not None else None
    yield user
    if entry is not None:
        store(user, entry)


class AccessCacheMiddleware:
    """After AuthenticationMiddleware: the request's user, when it is first used, comes
    with its permissions and scope from the cache; what the request computed is kept."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not enabled():
            return self.get_response(request)
        holder = {}

        def primed_user():
            user = get_user(request)
            holder["primed"] = prime(user)
            return user

        # Kept here: signing in or out during the request replaces `request.user`.
        lazy = request.user = SimpleLazyObject(primed_user)
        response = self.get_response(request)
        primed = holder.get("primed")
        if primed is not None and lazy._wrapped is not empty:
            store(lazy._wrapped, primed)
        return response


def _changed(sender, **kwargs) -> None:
    bump_now_and_after_commit()


def _user_relations_changed(sender, action, **kwargs) -> None:
    if action in ("post_add", "post_remove", "post_clear"):
        bump_now_and_after_commit()


def connect_signals() -> None:
    """Bump the generation on every change that can change a user's permissions or scope."""
    for model in (Group, Permission, Organisation, UserObjectPermission, GroupObjectPermission):
        for signal in (models.signals.post_save, models.signals.post_delete):
            signal.connect(_changed, sender=model, dispatch_uid=f"ami-access-{model.__name__}")
    for through in (User.groups.through, User.user_permissions.through,
                    Group.permissions.through):  # fmt: skip
        models.signals.m2m_changed.connect(
            _user_relations_changed, sender=through, dispatch_uid=f"ami-access-{through.__name__}"
        )
