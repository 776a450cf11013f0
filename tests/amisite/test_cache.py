"""The Redis cache shares one client and connection pool per process (amisite/cache.py):
under ASGI each request is an asyncio task with a context of its own, where Django's
`caches` built a new cache object, client, pool and Redis connection per request."""

import asyncio
import contextvars

import pytest
from django.core.cache import caches


def test_every_request_context_shares_one_redis_client_and_pool(settings):
    if "Redis" not in settings.CACHES["default"]["BACKEND"]:
        pytest.skip("no Redis configured")
    assert settings.CACHES["default"]["BACKEND"] == "amisite.cache.SharedPoolRedisCache"

    async def one_request(n):
        await asyncio.sleep(0)
        cache = caches["default"]  # as a view would, inside its own task
        cache.set(f"ami-test-shared-pool-{n}", n, 30)
        return cache, cache._cache, cache._cache._get_connection_pool(write=True)

    async def many():
        return await asyncio.gather(*(one_request(n) for n in range(5)))

    # A server's event loop, whose context never used the cache: each task makes its own.
    seen = contextvars.Context().run(asyncio.run, many())
    caches_, clients, pools = zip(*seen, strict=True)
    assert len({id(c) for c in caches_}) == 5  # Django's per-context objects, as before...
    assert len({id(c) for c in clients}) == 1  # ...sharing one client
    assert len({id(p) for p in pools}) == 1  # and one pool of connections
    assert caches["default"].get_many([f"ami-test-shared-pool-{n}" for n in range(5)]) == {
        f"ami-test-shared-pool-{n}": n for n in range(5)
    }
    caches["default"].delete_many([f"ami-test-shared-pool-{n}" for n in range(5)])


def test_one_redis_object_per_pool_not_one_per_call(settings):
    if "Redis" not in settings.CACHES["default"]["BACKEND"]:
        pytest.skip("no Redis configured")
    client = caches["default"]._cache
    first = client.get_client("a")
    assert client.get_client("b") is first
    assert client.get_client("c", write=True) is first  # one server: reads and writes share it
    assert first.connection_pool is client._get_connection_pool(write=True)
    caches["default"].set("ami-test-reused-client", 1, 30)
    assert caches["default"].get("ami-test-reused-client") == 1
    caches["default"].delete("ami-test-reused-client")
