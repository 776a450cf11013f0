"""The channel layer: channels_redis's, with a Redis pool that waits for a free connection.

redis-py's default pool refuses a connection past its `max_connections` at once
(MaxConnectionsError). Two thousand status and alarm sockets of one process closing
together -- a deploy, a proxy restart, the end of `bench/web_load.py` -- each leave their
groups with one Redis command, and ~490 of them were refused and logged as errors (#21).
`BlockingConnectionPool` holds such a command until a connection is free, for at most
`CHANNEL_LAYER_POOL_WAIT` seconds (settings), and only then fails.

A receive also ends when it was cancelled and the cancellation got lost on the way.
Python 3.11's `asyncio.wait_for` drops a cancellation that lands as its awaitable finishes
(CPython gh-86296, fixed in 3.12), and redis-py sends every command through it when a
`socket_timeout` is set. channels_redis' receive loops on its blocking pop until a message
comes, so a consumer that had closed its socket waited forever on a receive nobody would
ever answer, its Redis connection busy every 5 s (seen in
`tests/collection/test_status_websocket.py`: one run in ten hung at teardown).
"""

from __future__ import annotations

import asyncio

from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool


def raise_if_cancelled() -> None:
    """Raise CancelledError when the running task was cancelled, even if the CancelledError
    itself was swallowed on the way (Python 3.11's `wait_for`, above): for loops on the
    layer that would otherwise go on for good."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError("the task was cancelled")


class WaitingRedisChannelLayer(RedisChannelLayer):
    """`RedisChannelLayer` whose hosts (given by "address") get a waiting pool; a host's
    "pool_wait" is how long a command waits for a connection (seconds)."""

    def create_pool(self, index):
        host = dict(self.hosts[index])
        address = host.pop("address")
        wait = host.pop("pool_wait", 10.0)
        return BlockingConnectionPool.from_url(address, timeout=wait, **host)

    async def _brpop_with_clean(self, index, channel, timeout):
        # Called again for every empty pop: a receive whose task was cancelled (the count
        # asyncio keeps stays up even when the CancelledError was swallowed) stops here.
        raise_if_cancelled()
        return await super()._brpop_with_clean(index, channel, timeout)
