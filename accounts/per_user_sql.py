"""ORM statements compiled once and run with one user's id put in.

The per-user lookups that run hundreds of times a second under load (a socket's access
re-check, a user's permissions and scope when their cached entry has run out) are ORM
querysets whose compilation cost more CPU than PostgreSQL's answer: 2-3 ms of Python for a
union that the database answers in a fraction of that. Each is compiled here once per
database and key, with a stand-in for the user's id, and run with the real id put in its
places. The queryset stays the one definition of the statement; its tests compare the two.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import connections, models

# Stands for the user's id while a statement is compiled: never a user's id, and told apart
# from the statement's other values (texts, content type ids) by equality.
USER_STAND_IN = -7_301_977_013
_compiled: dict[tuple, tuple[str, tuple, tuple[int, ...]]] = {}


def run_for_user(
    key: tuple,
    alias: str,
    build: Callable[[int], models.QuerySet],
    user_id: int,
    places: int,
) -> list[tuple]:
    """The rows of `build(user_id)`, from its statement compiled once for (`key`, `alias`).

    `places` is how many times the statement holds the user's id: a statement that holds it
    elsewhere or another number of times is a changed query, and an error, not a guess."""
    compiled = _compiled.get((key, alias))
    if compiled is None:
        sql, params = build(USER_STAND_IN).query.get_compiler(using=alias).as_sql()
        found = tuple(i for i, value in enumerate(params) if value == USER_STAND_IN)
        if len(found) != places:
            raise AssertionError(f"{key}: the user's id in {len(found)} places, not {places}")
        compiled = _compiled[(key, alias)] = (sql, tuple(params), found)
    sql, params, found = compiled
    values = list(params)
    for place in found:
        values[place] = user_id
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, values)
        return list(cursor.fetchall())
