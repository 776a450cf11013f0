"""The short-lived roll-up cache of the whole-fleet map cells and the grid tree: keyed by the
user's exact scope and query, stale for at most DASHBOARD_ROLLUP_SECONDS, and said so."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import cache

from accounts.scoping import scope_paths
from meters import map_views, rollup_cache
from meters.models import CommStatus
from tests.meters.test_map import LONDON, client_for, placed  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db
FAR = {**LONDON, "zoom": 3}


@pytest.fixture
def cached(settings, monkeypatch):
    settings.DASHBOARD_ROLLUP_SECONDS = 15
    monkeypatch.setattr(map_views, "POINT_LIMIT", 1)  # cells even for 2 meters
    expire()
    yield
    expire()


def expire() -> None:
    """Every cached roll-up's time is up: the shared entries and this process's copies."""
    cache.clear()
    rollup_cache._local.clear()


def test_map_cells_cached_per_scope_and_query(placed, cached):  # noqa: F811
    a_client, b_client = client_for(placed.operator_a), client_for(placed.operator_b)
    first = a_client.get("/map/data/", FAR).json()
    assert first["total"] == 2 and "as_of" in first
    # Another organisation's operator never gets A's entry, nor does a wider scope.
    assert b_client.get("/map/data/", FAR).json()["total"] == 2
    assert client_for(placed.superuser).get("/map/data/", FAR).json()["total"] == 4
    CommStatus.objects.create(meter=placed.grid_a.meters[0], unreachable=True)
    again = a_client.get("/map/data/", FAR).json()
    assert again["cells"] == first["cells"] and again["as_of"] == first["as_of"]  # within TTL
    # A different filter is a different query, computed now (here one meter, counted in a
    # cell: at fleet zoom meters are always clustered).
    fresh = a_client.get("/map/data/", {**FAR, "q": placed.grid_a.meters[0].serial}).json()
    assert [c["counts"] for c in fresh["cells"]] == [{"unreachable": 1}]
    expire()  # the TTL elapsed
    later = a_client.get("/map/data/", FAR).json()
    assert sum(c["counts"].get("unreachable", 0) for c in later["cells"]) == 1


def test_grid_rollups_cached_per_scope_and_shown_with_age(placed, cached):  # noqa: F811
    a_page = client_for(placed.operator_a).get("/grid/")
    assert a_page.context["roots"][0].rollup["total"] == 2
    assert b"Counts as of" in a_page.content and b"every 15 s" in a_page.content
    b_page = client_for(placed.operator_b).get("/grid/")
    assert [r.code for r in b_page.context["roots"]] == [placed.grid_b.region.code]
    assert b_page.context["roots"][0].rollup["total"] == 2
    assert placed.grid_a.region.code.encode() not in b_page.content


def test_home_figures_shared_per_scope_and_role_for_seconds(placed, cached):  # noqa: F811
    from django.contrib.auth.models import Group

    from accounts import roles
    from accounts.models import User
    from collection.consumers import fleet_snapshot

    a = placed.operator_a
    a_twin = User.objects.create_user("operator-a2", password="pw", organisation=a.organisation)
    a_twin.groups.set(Group.objects.filter(name=roles.OPERATOR))
    first = fleet_snapshot(a)
    assert first["meters"]["total"] == 2
    CommStatus.objects.create(meter=placed.grid_a.meters[0], unreachable=True)
    # Within the few seconds: the same figures for A and for a user of A's scope and role.
    assert fleet_snapshot(a) == first
    assert fleet_snapshot(User.objects.get(pk=a_twin.pk)) == first
    # Never for another organisation, a wider scope or other permissions.
    assert fleet_snapshot(placed.operator_b)["meters"]["total"] == 2
    assert fleet_snapshot(placed.superuser)["meters"]["total"] == 4
    # Same organisation, another role: its own entry, computed after the change.
    assert first["unreachable"] == 0
    assert fleet_snapshot(placed.readonly_a)["unreachable"] == 1
    expire()  # the seconds elapsed
    assert fleet_snapshot(a)["unreachable"] == 1


def test_home_counts_for_the_rollup_seconds_alarms_for_five(placed, cached):  # noqa: F811
    """The fleet's counts (meters, health, reads) are kept for DASHBOARD_ROLLUP_SECONDS and
    say when they were counted; open alarms and outages are recomputed after
    SNAPSHOT_SECONDS, without recounting the meters."""
    from django.utils import timezone

    from collection import consumers
    from meters.alarms.models import Alarm, AlarmRule

    a = placed.operator_a
    first = consumers.fleet_snapshot(a)
    assert first["meters"]["total"] == 2 and first["alarms"]["total"] == 0
    assert first["fleet_as_of"]
    meter = placed.grid_a.meters[0]
    now = timezone.now()
    rule = AlarmRule.objects.create(name="r", organisation=meter.organisation, kinds=["x"])
    Alarm.objects.create(rule=rule, meter=meter, organisation=meter.organisation, kind="x",
                         severity=40, first_event_at=now, last_event_at=now)  # fmt: skip
    CommStatus.objects.create(meter=meter, unreachable=True)
    events_key = rollup_cache.scope_key(a, "fleet-events", *sorted(a.get_all_permissions()))
    cache.delete(events_key)  # SNAPSHOT_SECONDS elapsed, DASHBOARD_ROLLUP_SECONDS not
    rollup_cache._local.pop(events_key, None)  # (and this process's copy with it)
    later = consumers.fleet_snapshot(a)
    assert later["alarms"]["total"] == 1  # acted on: recomputed
    assert later["unreachable"] == 0 and later["meters"] == first["meters"]  # counted earlier
    assert later["fleet_as_of"] == first["fleet_as_of"]
    page = client_for(a).get("/")
    assert b'id="fleet-as-of">' + first["fleet_as_of"].encode() in page.content
    assert b"at most every 15 s" in page.content
    # Never another organisation's: B's figures are B's own.
    assert consumers.fleet_snapshot(placed.operator_b)["alarms"]["total"] == 0


def _slow(calls, started, release, value):
    def compute():
        calls.append(value)
        started.set()
        assert release.wait(10)
        return value

    return compute


def test_an_expired_entry_is_recomputed_once_the_others_show_the_previous(placed, cached):  # noqa: F811
    """Single flight: while one request recomputes, the others answer at once with the
    figures of just before (and their time), instead of all running the aggregate."""
    user = placed.operator_a
    scope_paths(user)  # the threads below ask nothing of the database
    assert rollup_cache.cached_rollup(user, ["t"], lambda: "before", seconds=5)[0] == "before"
    key = rollup_cache.scope_key(user, "t")
    value, as_of, _ = cache.get(key)
    cache.set(key, (value, as_of, 0), 60)  # its time is up
    calls, started, release = [], threading.Event(), threading.Event()
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(
            rollup_cache.cached_rollup, user, ["t"], _slow(calls, started, release, "after"), 5
        )
        assert started.wait(10)
        others = [
            pool.submit(rollup_cache.cached_rollup, user, ["t"], lambda: "again", 5)
            for _ in range(5)
        ]
        answered = [f.result(10) for f in others]  # while the first still computes
        release.set()
        assert first.result(10)[0] == "after"
    assert answered == [("before", as_of)] * 5
    assert calls == ["after"]
    assert rollup_cache.cached_rollup(user, ["t"], lambda: "never", seconds=5)[0] == "after"


def test_callers_of_a_cold_entry_wait_for_the_one_computing_it(placed, cached):  # noqa: F811
    user = placed.operator_a
    scope_paths(user)
    calls, started, release = [], threading.Event(), threading.Event()
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(
            rollup_cache.cached_rollup, user, ["cold"], _slow(calls, started, release, "once"), 5
        )
        assert started.wait(10)
        others = [
            pool.submit(rollup_cache.cached_rollup, user, ["cold"], lambda: "twice", 5)
            for _ in range(5)
        ]
        release.set()
        values = [f.result(20)[0] for f in [first, *others]]
    assert values == ["once"] * 6 and calls == ["once"]


def test_a_local_copy_serves_this_process_until_the_entry_runs_out(placed, cached, monkeypatch):  # noqa: F811
    """`local=True` (the status sockets' figures): a fresh entry read once is kept in the
    process until its own "fresh until", then read or computed again like any other."""
    import time as clock

    calls = []

    def compute():
        calls.append(1)
        return {"n": len(calls)}

    user = placed.operator_a
    first = rollup_cache.cached_rollup(user, ["local-test"], compute, seconds=5, local=True)
    cache.clear()  # Redis forgot it (or is away): the process's copy is still fresh
    again = rollup_cache.cached_rollup(user, ["local-test"], compute, seconds=5, local=True)
    assert again == first and len(calls) == 1
    later = clock.time() + 6
    monkeypatch.setattr(rollup_cache.time, "time", lambda: later)
    value, _ = rollup_cache.cached_rollup(user, ["local-test"], compute, seconds=5, local=True)
    assert value == {"n": 2} and len(calls) == 2


def test_entries_computed_together_do_not_run_out_together(placed, cached, monkeypatch):  # noqa: F811
    """Each entry is fresh for a random 75-100 % of its seconds, never longer: the map
    cells, grid roll-ups and home counts first computed in one second drift apart instead
    of being recomputed in the same second every 15 s."""
    user = placed.operator_a
    shares = iter([0.75, 1.0, 0.9])
    monkeypatch.setattr(rollup_cache.random, "uniform", lambda low, high: next(shares))
    before = time.time()
    for name in ("cells", "grid", "counts"):
        rollup_cache.cached_rollup(user, [name], lambda name=name: name, seconds=12)
    fresh = [cache.get(rollup_cache.scope_key(user, name))[2] - before
             for name in ("cells", "grid", "counts")]  # fmt: skip
    assert [round(f) for f in fresh] == [9, 12, 11]
    monkeypatch.undo()
    shares = [rollup_cache.fresh_seconds(10) for _ in range(200)]
    assert 7.5 <= min(shares) and max(shares) <= 10 and len(set(shares)) > 100
