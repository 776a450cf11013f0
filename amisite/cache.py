"""Django's Redis cache with one connection pool per process, not one per request.

Django keeps its cache objects per async context (`caches` is an asgiref `Local`), and under
ASGI every request is a task of its own: each request built a new `RedisCache`, a new
client, a new connection pool and so a new TCP connection to Redis (Django ticket #35651),
left to the garbage collector afterwards. On the web that was a connect and a health check
per page (7 % of a busy worker's samples) and thousands of short-lived connections a
minute on Redis. Here the client, and with it redis-py's thread-safe pool, is shared by
every `RedisCache` of the process with the same servers and options (redis-py resets a
pool it finds in a forked child, so Celery's prefork children get their own).
"""

from __future__ import annotations

import threading

from django.core.cache.backends.redis import RedisCache
from django.utils.functional import cached_property

_clients: dict = {}
_lock = threading.Lock()


class SharedPoolRedisCache(RedisCache):
    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
        return client
