"""The status sockets' periodic refresh: every user once per period, spread over it."""

import asyncio

from collection import consumers
from collection.consumers import REFRESH_STEP_SECONDS, refresh_schedule


def test_each_user_once_per_period_spread_over_it():
    users = list(range(1000))
    schedule = refresh_schedule(users, 20.0)
    assert [u for _, batch in schedule for u in batch] == users  # each once, in order
    assert abs(sum(pause for pause, _ in schedule) - 20.0) < 1e-9  # the last at its end
    assert len(schedule) == 334  # 400 steps of 50 ms at most: 3 users a step
    assert all(pause >= REFRESH_STEP_SECONDS for pause, _ in schedule)
    assert {len(batch) for _, batch in schedule} <= {1, 2, 3}


def test_few_users_get_a_step_each_and_none_waits_a_period():
    assert refresh_schedule(["a", "b", "c"], 6.0) == [(2.0, ["a"]), (2.0, ["b"]), (2.0, ["c"])]
    assert refresh_schedule(["a"], 20.0) == [(20.0, ["a"])]  # as before: one period after
    assert refresh_schedule([], 20.0) == [(20.0, [])]


def test_the_ticker_refreshes_every_user_in_steps_not_all_at_once(monkeypatch):
    monkeypatch.setattr(consumers, "REFRESH_SECONDS", 0.5)
    monkeypatch.setattr(consumers, "REFRESH_STEP_SECONDS", 0.125)  # 4 steps at most

    async def scenario():
        refresher = consumers._Refresher()
        refresher.sockets = {user: {object()} for user in range(6)}
        nudged = []
        loop = asyncio.get_running_loop()
        refresher.nudge = lambda user, delay: nudged.append((loop.time(), user, delay))
        ticker = asyncio.ensure_future(refresher._tick())
        while not nudged:
            await asyncio.sleep(0.01)
        del refresher.sockets[5]  # gone before its turn: not refreshed
        while len(nudged) < 5:
            await asyncio.sleep(0.01)
        ticker.cancel()
        return nudged[:5]

    first_cycle = asyncio.run(scenario())
    assert sorted(user for _, user, _ in first_cycle) == [0, 1, 2, 3, 4]
    assert {delay for _, _, delay in first_cycle} == {0}
    # Three steps of two users (a third of the period apart), the last refreshing only the
    # user still there.
    assert len({round(t, 3) for t, _, _ in first_cycle}) == 3
