"""Short-lived cache of the dashboard's fleet-wide roll-ups, and a query-memory helper.

The whole-fleet map cells and the grid tree's roll-ups aggregate every meter in the user's
scope (100k at fleet scale): a few hundred milliseconds of PostgreSQL time that many operators
would repeat every few seconds. Their results are cached for `DASHBOARD_ROLLUP_SECONDS`
(15 s by default; 0 turns the cache off) under a key made of the user's exact scope (the
organisation paths `scope_paths` returns, or "all" for superusers) and everything else that
selects the meters (filters, box, node), so two users share an entry only when they would see
the same meters. The pages say how old the figures are ("as of"). An entry that ran out is
recomputed by one request at a time; requests arriving meanwhile get the previous figures
(with their own "as of"), or wait for the first ones (`cached_rollup`).
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from accounts.scoping import scope_paths

AGGREGATE_WORK_MEM = "32MB"


def ttl() -> int:
    return int(getattr(settings, "DASHBOARD_ROLLUP_SECONDS", 15))


def scope_key(user, *parts) -> str:
    paths = scope_paths(user, "view")
    raw = json.dumps(
        ["all" if paths is None else sorted(paths), [str(p) for p in parts]], sort_keys=True
    )
    # v2: entries are (value, as_of, fresh until); a process of the release before (a
    # rolling upgrade shares Redis) reads only its own "dash-rollup:" entries of two.
    return "dash-rollup:v2:" + hashlib.sha256(raw.encode()).hexdigest()


# Single flight: when an entry runs out, one request recomputes it (holding a lock for at
# most LOCK_SECONDS) while the others go on showing the previous figures, kept
# STALE_SECONDS past their time for that; with nothing to show yet they wait for it up to
# WAIT_SECONDS (then compute themselves). Without it, every operator asking in the moment
# a 5 s home snapshot expired ran its ~1 s of PostgreSQL again, at the worst time.
LOCK_SECONDS = 30
STALE_SECONDS = 30
WAIT_SECONDS = 10.0
WAIT_STEP = 0.05


# Entries read from the shared cache, kept in this process until their own "fresh until"
# (`cached_rollup(local=True)`): 1,000 status sockets of one process asked Redis for the same
# two entries 50 times a second.
_local: dict[str, tuple] = {}
LOCAL_ENTRIES = 1000


def cached_rollup(user, parts, compute, seconds: int | None = None, local: bool = False):
    """(value, as_of): `compute()` once per TTL per (scope, parts); as_of is when it ran.

    `seconds` shortens the TTL for figures that must follow events closely (never longer
    than `DASHBOARD_ROLLUP_SECONDS`, so 0 there still turns every cache off). `local`: a
    fresh entry is also kept in this process until it runs out, and the same value object is
    returned to every caller meanwhile (they must not change it)."""
    seconds = ttl() if seconds is None else min(seconds, ttl())
    if seconds <= 0:
        return compute(), timezone.now()
    key = scope_key(user, *parts)
    now = time.time()
    if local:
        entry = _local.get(key)
        if entry is not None and entry[2] > now:
            return entry[0], entry[1]
    entry = _entry(cache.get(key))
    if entry is not None and entry[2] > now:
        if local:
            _keep_local(key, entry, now)
        return entry[0], entry[1]
    lock = key + ":computing"
    if cache.add(lock, 1, LOCK_SECONDS):
        try:
            # the one computing may have finished and let go between our read and the lock
            latest = _entry(cache.get(key))
            if latest is not None and latest[2] > time.time():
                return latest[0], latest[1]
            return _compute_and_keep(key, compute, seconds, local)
        finally:
            cache.delete(lock)
    if entry is not None:  # another request is recomputing it: the figures of just before
        return entry[0], entry[1]
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(WAIT_STEP)
        entry = _entry(cache.get(key))
        if entry is not None:
            return entry[0], entry[1]
    return _compute_and_keep(key, compute, seconds, local)  # the one computing failed or stuck


def _keep_local(key: str, entry: tuple, now: float) -> None:
    if len(_local) >= LOCAL_ENTRIES:
        for old in [k for k, e in list(_local.items()) if e[2] <= now]:
            _local.pop(old, None)
        if len(_local) >= LOCAL_ENTRIES:
            _local.clear()
    _local[key] = entry


def _entry(raw):
    """(value, as_of, fresh until) or None (also for an entry of the earlier layout)."""
    return raw if isinstance(raw, tuple) and len(raw) == 3 else None


# An entry is fresh for a random 75-100 % of its seconds (never longer: the pages say "at
# most every 15 s"). With one time for all, the fleet's map cells, grid roll-ups and home
# counts, first computed in the same second, ran out in the same second every 15 s: ~0.6 s
# of PostgreSQL at once at 100,000 meters, where a page's p95 was made at 200 operators
# (bench/web_load.py --timeline: its spikes came every 15-16 s). They drift apart now.
FRESH_SHARE = (0.75, 1.0)


def fresh_seconds(seconds: float) -> float:
    return seconds * random.uniform(*FRESH_SHARE)


def _compute_and_keep(key, compute, seconds, local=False):
    value, as_of = compute(), timezone.now()
    entry = (value, as_of, time.time() + fresh_seconds(seconds))
    cache.set(key, entry, seconds + STALE_SECONDS)
    if local:
        _keep_local(key, entry, time.time())
    return value, as_of


def cached_per_scope(
    user, name: str, compute, seconds: int, with_time: bool = False, local: bool = False
):
    """`compute()`'s value shared by users who see the same organisations with the same
    permissions (roles decide which models `restrict` lets through) for `seconds`;
    with_time: (value, when it was computed); local: see `cached_rollup`."""
    value, as_of = cached_rollup(
        user, [name, *sorted(user.get_all_permissions())], compute, seconds=seconds, local=local
    )
    return (value, as_of) if with_time else value


@contextmanager
def aggregate_memory():
    """On PostgreSQL, a larger `work_mem` for this transaction only: grouping by computed
    expressions (health class, map cell) is estimated at one group per meter, and at the
    default 4 MB the planner sorts 100k rows on disk instead of hashing a few dozen groups."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL work_mem = '{AGGREGATE_WORK_MEM}'")
        yield
