"""Bulk statements on PostgreSQL through Django's cursor (psycopg 3): binary COPY, rows as arrays.

Errors come out as Django's (`django.db.IntegrityError`, ...), like any other query's, so
callers need not know the driver.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import DEFAULT_DB_ALIAS, connection, connections


def copy_in(cursor, statement: str, data: bytes) -> None:
    """Run `COPY ... FROM STDIN` on Django's `cursor`, sending `data` (already encoded) as is."""
    with connection.wrap_database_errors, cursor.cursor.copy(statement) as copy:
        copy.write(data)


def execute_rows(
    cursor,
    statement: str,
    rows: Iterable[Sequence],
    types: Sequence[str],
    *,
    page_size: int = 10000,
    fetch: bool = False,
) -> list[tuple]:
    """Run `statement` with `rows` as its row source, one array parameter per column.

    The statement's one `%s` stands where a SELECT may (``INSERT INTO t (a, b) %s``,
    ``FROM (%s) AS v(a, b)``, ``WITH d (a, b) AS (%s)``); it becomes
    ``SELECT * FROM unnest(%s::<type>[], ...)`` with `types` naming each column's
    PostgreSQL type. The statement's text stays the same whatever the number of rows, so the
    driver converts it once (a `VALUES` list of thousands of placeholders made psycopg split
    and quote a statement of ~100 kB per call, more Python than the statement took in the
    database). With `fetch`, the rows every page returned.
    """
    rows = list(rows)
    if not rows:
        return []
    head, placeholder, tail = statement.partition("%s")
    if not placeholder or "%s" in tail:
        raise ValueError("the statement needs one %s where the rows go")
    if len(rows[0]) != len(types):
        raise ValueError(f"{len(types)} types for rows of {len(rows[0])} values")
    source = "SELECT * FROM unnest(" + ", ".join(f"%s::{t}[]" for t in types) + ")"
    sql = head + source + tail
    fetched: list[tuple] = []
    for start in range(0, len(rows), page_size):
        columns = [list(column) for column in zip(*rows[start : start + page_size], strict=True)]
        cursor.execute(sql, columns)
        if fetch:
            fetched.extend(cursor.fetchall())
    return fetched


def update_rows(model, objs: Sequence, fields: Sequence[str], *, page_size: int = 1000) -> None:
    """`model.objects.bulk_update(objs, fields)` as ONE `UPDATE ... FROM unnest(...)` per
    page on PostgreSQL, matched on the primary key. Django's own builds a `CASE WHEN` per
    field and row, which for a batch of a few hundred rows costs more Python than the update
    takes in the database; on other databases Django's is used."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objs, fields, batch_size=500)
        return
    meta = model._meta
    db = connections[DEFAULT_DB_ALIAS]  # once: every `connection.x` goes through a proxy
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    names = ", ".join(f.column for f in columns)
    sets = ", ".join(f"{f.column} = v.{f.column}" for f in columns[1:])
    pk = meta.pk.column
    types = [f.db_type(connection) for f in columns]
    prep = [(f.attname, f.get_db_prep_save) for f in columns]
    rows = [[save(getattr(obj, name), db) for name, save in prep] for obj in objs]
    with connection.cursor() as cursor:
        execute_rows(
            cursor,
            f"UPDATE {meta.db_table} AS t SET {sets} FROM (%s) AS v({names}) WHERE t.{pk} = v.{pk}",
            rows,
            types,
            page_size=page_size,
        )
