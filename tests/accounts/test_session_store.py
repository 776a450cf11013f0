"""Sessions read from Redis for a short while, kept in PostgreSQL (accounts/session_store.py).

Through the real middleware, the real Redis cache and the pages: a page after the first
reads no session row, a sign-out counts on the next request from another browser holding
the same cookie, a session deleted behind the application's back ends within
AMI_SESSION_CACHE_SECONDS, and with Redis away every page and the sign-out still work.
"""

from __future__ import annotations

import time

import pytest
from django.conf import settings as live_settings
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts import session_store

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        live_settings.SESSION_ENGINE != "accounts.session_store", reason="no Redis configured"
    ),
]

SESSION_ROWS = '"django_session"'


def _signed_in(user) -> tuple[Client, str]:
    client = Client()
    client.force_login(user)
    return client, client.cookies[live_settings.SESSION_COOKIE_NAME].value


def _same_cookie(key: str) -> Client:
    """Another browser that holds the same session cookie (a copied or stolen one)."""
    other = Client()
    other.cookies[live_settings.SESSION_COOKIE_NAME] = key
    return other


def _entry_ttl(key: str) -> int:
    cache = caches[live_settings.SESSION_CACHE_ALIAS]
    redis_key = cache.make_key(session_store.SessionStore.cache_key_prefix + key)
    return cache._cache.get_client(redis_key).ttl(redis_key)


def test_pages_read_the_session_from_redis_not_its_row(world):
    client, key = _signed_in(world.operator_a)
    assert 0 < _entry_ttl(key) <= 60  # not the session's two weeks
    with CaptureQueriesContext(connection) as pages:
        assert client.get("/meters/").status_code == 200
        assert client.get("/alarms/").status_code == 200
    assert not [q for q in pages.captured_queries if SESSION_ROWS in q["sql"]]
    assert Session.objects.filter(session_key=key).exists()  # kept in PostgreSQL all the same


def test_a_missing_entry_is_read_from_the_row_and_kept_again(world):
    client, key = _signed_in(world.operator_a)
    caches[live_settings.SESSION_CACHE_ALIAS].delete(
        session_store.SessionStore.cache_key_prefix + key
    )
    with CaptureQueriesContext(connection) as page:
        assert client.get("/meters/").status_code == 200
    assert [q for q in page.captured_queries if SESSION_ROWS in q["sql"]]
    assert 0 < _entry_ttl(key) <= 60


def test_sign_out_counts_for_every_holder_of_the_cookie_at_once(world):
    client, key = _signed_in(world.operator_a)
    copy = _same_cookie(key)
    assert copy.get("/meters/").status_code == 200  # the entry is in Redis now
    assert client.post("/logout/").status_code in (200, 302)
    answer = copy.get("/meters/")
    assert answer.status_code == 302 and "/login/" in answer["Location"]
    assert not Session.objects.filter(session_key=key).exists()


def test_a_row_deleted_behind_the_applications_back_ends_within_the_entry_time(world, settings):
    settings.AMI_SESSION_CACHE_SECONDS = 1
    client, key = _signed_in(world.operator_a)
    assert client.get("/meters/").status_code == 200
    with connection.cursor() as cursor:  # SQL, as a restore or an administrator would
        cursor.execute("DELETE FROM django_session WHERE session_key = %s", [key])
    time.sleep(1.5)  # the entry's one second has run out in Redis
    answer = client.get("/meters/")
    assert answer.status_code == 302 and "/login/" in answer["Location"]


def test_with_redis_away_pages_and_sign_out_still_work(world, settings, caplog):
    settings.CACHES = {
        "default": {
            "BACKEND": "amisite.cache.SharedPoolRedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens there
        }
    }
    client, key = _signed_in(world.operator_a)
    assert client.get("/meters/").status_code == 200
    assert client.post("/logout/").status_code in (200, 302)
    assert not Session.objects.filter(session_key=key).exists()
    answer = _same_cookie(key).get("/meters/")
    assert answer.status_code == 302 and "/login/" in answer["Location"]
    assert "session cache" in caplog.text
