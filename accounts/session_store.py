"""Sessions kept in PostgreSQL and read from Redis for a short while.

Every request read its session from the database: one more statement, compiled by the ORM,
before any page's own work (~1-2 ms of a page's CPU, bench/page_cost.py). Django's
`cached_db` store reads it from the cache instead and writes both; this one differs where
a utility's sign-out has to hold:

- **An entry is kept at most `AMI_SESSION_CACHE_SECONDS`** (60, as the access cache), not
  the session's two weeks. Sign-out deletes the row and the entry; if Redis cannot be
  reached at that moment the entry would outlive the sign-out, and a session deleted behind
  the application's back (SQL, a restored database) would too: for this long at most.
  Websockets check the row itself (`accounts/sessions.py`) and close at once either way.
- **Redis away is not an error.** Django's store raises from `load` (it stores what it read
  from the database in the cache unguarded), from `exists` and from `delete`: a page would
  answer 500 while Redis restarts. Here the database answers alone and a warning is logged.

It is the session engine whenever `REDIS_URL` is set (amisite/settings.py); without Redis
every process would have its own cache and a sign-out would not reach the others, so the
plain database store is used.
"""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.backends import cached_db

log = logging.getLogger("accounts.session_store")


def _warn(what: str, exc: Exception) -> None:
    log.warning("session cache: %s failed (%s: %s)", what, type(exc).__name__, exc)


class SessionStore(cached_db.SessionStore):
    def _entry_seconds(self, expiry=None) -> int:
        age = self.get_expiry_age(expiry=expiry) if expiry is not None else self.get_expiry_age()
        return max(0, min(age, settings.AMI_SESSION_CACHE_SECONDS))

    def load(self):
        try:
            data = self._cache.get(self.cache_key)
        except Exception as exc:  # Redis away, or a key it cannot take: ask the database
            _warn("read", exc)
            data = None
        if data is not None:
            return data
        row = self._get_session_from_db()
        if not row:
            return {}
        data = self.decode(row.session_data)
        seconds = self._entry_seconds(expiry=row.expire_date)
        if seconds:
            try:
                self._cache.set(self.cache_key, data, seconds)
            except Exception as exc:
                _warn("store", exc)
        return data

    def exists(self, session_key):
        try:
            if session_key and (self.cache_key_prefix + session_key) in self._cache:
                return True
        except Exception as exc:
            _warn("lookup", exc)
        return super(cached_db.SessionStore, self).exists(session_key)  # the db store's

    def save(self, must_create=False):
        super(cached_db.SessionStore, self).save(must_create)  # the row, as the db store does
        seconds = self._entry_seconds()
        try:
            if seconds:
                self._cache.set(self.cache_key, self._session, seconds)
            else:
                self._cache.delete(self.cache_key)
        except Exception as exc:
            _warn("store", exc)

    def delete(self, session_key=None):
        super(cached_db.SessionStore, self).delete(session_key)  # the row first
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        try:
            self._cache.delete(self.cache_key_prefix + session_key)
        except Exception as exc:  # the entry lives on for AMI_SESSION_CACHE_SECONDS at most
            _warn("delete", exc)

    # Django's async forms of the same (its own would keep entries for the session's whole
    # age and raise when Redis is away): the sync ones above, in a thread.
    async def aload(self):
        return await sync_to_async(self.load)()

    async def aexists(self, session_key):
        return await sync_to_async(self.exists)(session_key)

    async def asave(self, must_create=False):
        await sync_to_async(self.save)(must_create)

    async def adelete(self, session_key=None):
        await sync_to_async(self.delete)(session_key)
