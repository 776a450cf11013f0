"""The channel layer: channels_redis's, with a Redis pool that waits for a free connection.

redis-py's default pool refuses a connection past its `max_connections` at once
(MaxConnectionsError). Two thousand status and alarm sockets of one process closing
together -- a deploy, a proxy restart, the end of `bench/web_load.py` -- each leave their
groups with one Redis command, and ~490 of them were refused and logged as errors (#21).
`BlockingConnectionPool` holds such a command until a connection is free, for at most
`CHANNEL_LAYER_POOL_WAIT` seconds (settings), and only then fails.
"""

from __future__ import annotations

from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool


class WaitingRedisChannelLayer(RedisChannelLayer):
    """`RedisChannelLayer` whose hosts (given by "address") get a waiting pool; a host's
    "pool_wait" is how long a command waits for a connection (seconds)."""

    def create_pool(self, index):
        host = dict(self.hosts[index])
        address = host.pop("address")
        wait = host.pop("pool_wait", 10.0)
        return BlockingConnectionPool.from_url(address, timeout=wait, **host)
