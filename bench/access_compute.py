"""A user's permissions and scopes when their cached entry has run out: one statement
(`accounts.access_cache.compute`) against Django's ModelBackend and guardian (five ORM
statements), in the same run.

Operators of three roles with organisation grants of their own and through their roles, on a
utility of regions. Each round computes every user both ways (A = compute, B = the ORM
path: `get_all_permissions` and `scope_paths` for seeing and for changing), alternating
which goes first; each user's answers are asserted equal. The figure is the median over
rounds of the thread's CPU per user (what the socket process spends on it), in ms, and the
ratio A / B.

    .venv/bin/python bench/access_compute.py            # 300 users, 9 rounds
    .venv/bin/python bench/access_compute.py --quick    # 60 users, 3 rounds
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.benchdb import drop_database, server_url, setup_django  # noqa: E402

BENCH = "access_compute"


def emit(metric, value, unit, baseline=None, **extra) -> None:
    line = {"bench": BENCH, "metric": metric, "value": round(value, 4), "unit": unit}
    if baseline is not None:
        line.update(baseline=round(baseline, 4), ratio=round(value / baseline, 3))
    line.update(extra)
    print(json.dumps(line), flush=True)


def build(users: int) -> list[int]:
    from django.contrib.auth.models import Group
    from guardian.shortcuts import assign_perm

    from accounts import roles
    from accounts.models import Organisation, User

    rng = random.Random(7)
    utility = Organisation.objects.create(name="Utility", code="utility")
    regions = [
        Organisation.objects.create(name=f"Region {n}", code=f"r{n}", parent=utility)
        for n in range(12)
    ]
    groups = [Group.objects.get(name=name) for name in (roles.OPERATOR, roles.ENGINEER)]
    groups.append(Group.objects.get(name=roles.ANALYST))
    for group in groups:  # roles with grants of their own
        assign_perm("accounts.access_organisation", group, rng.choice(regions))
    ids = []
    for n in range(users):
        user = User.objects.create_user(f"op-{n}", organisation=rng.choice(regions))
        user.groups.set(rng.sample(groups, rng.randint(1, 2)))
        for region in rng.sample(regions, rng.randint(0, 2)):
            assign_perm("accounts.access_organisation", user, region)
        if rng.random() < 0.3:
            assign_perm("accounts.operate_organisation", user, rng.choice(regions))
        ids.append(user.pk)
    return ids


def one_round(ids: list[int], computed: bool) -> tuple[float, list]:
    from accounts import access_cache
    from accounts.models import User
    from accounts.scoping import scope_paths

    answers = []
    spent = 0.0
    for user_id in ids:
        user = User.objects.get(pk=user_id)  # outside the timing: both ways read the row
        started = time.thread_time()
        if computed:
            access_cache.compute(user)
        answer = (
            user.get_all_permissions(),
            scope_paths(user, "view"),
            scope_paths(user, "change"),
        )
        spent += time.thread_time() - started
        answers.append(answer)
    return spent / len(ids) * 1000, answers


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database ami_bench_access")
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.rounds = 60, 3
    url, name = server_url(), "ami_bench_access"
    setup_django(url, name, AMI_ACCESS_CACHE_SECONDS="60")
    try:
        ids = build(args.users)
        one_round(ids, True)  # warm: content types, the compiled statement
        one_round(ids, False)
        a_ms, b_ms = [], []
        for n in range(args.rounds):
            order = (True, False) if n % 2 == 0 else (False, True)
            got = {}
            for computed in order:
                ms, answers = one_round(ids, computed)
                (a_ms if computed else b_ms).append(ms)
                got[computed] = answers
            assert got[True] == got[False], "compute and the ORM answered differently"
        a, b = statistics.median(a_ms), statistics.median(b_ms)
        emit("cpu_per_user_compute", a, "ms", baseline=b, users=args.users, rounds=args.rounds)
        emit("cpu_per_user_orm", b, "ms", users=args.users, rounds=args.rounds)
        print(
            f"{args.users} users x {args.rounds} rounds: one statement {a:.2f} ms of CPU a user,"
            f" the ORM path {b:.2f} ms ({a / b:.2f}x); answers equal for every user"
        )
    finally:
        if not args.keep:
            drop_database(url, name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
