"""Django's Redis cache with one connection pool per process, not one per request.

Django keeps its cache objects per async context (`caches` is an asgiref `Local`), and under
ASGI every request is a task of its own: each request built a new `RedisCache`, a new
client, a new connection pool and so a new TCP connection to Redis (Django ticket #35651),
left to the garbage collector afterwards. On the web that was a connect and a health check
per page (7 % of a busy worker's samples) and thousands of short-lived connections a
minute on Redis. Here the client, and with it redis-py's thread-safe pool, is shared by
every `RedisCache` of the process with the same servers and options (redis-py resets a
pool it finds in a forked child, so Celery's prefork children get their own).

Django's client also built a new `redis.Redis` around that pool for every cache call
(`get_client`): ~170 response callbacks put in a dict each time, ~0.2 ms of a page's CPU
for its two or three calls. A `redis.Redis` over a pool is safe to share between threads
(each command takes a connection from the pool), so one is kept per pool.
"""

from __future__ import annotations

import threading

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property

_clients: dict = {}
_lock = threading.Lock()


class ReusedClient(RedisCacheClient):
    """Django's client, with one `redis.Redis` per connection pool instead of one per call."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._redis_by_pool: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._redis_by_pool.get(id(pool))
        if client is None:
            client = self._redis_by_pool[id(pool)] = self._client(connection_pool=pool)
        return client


class SharedPoolRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusedClient

    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
        return client
