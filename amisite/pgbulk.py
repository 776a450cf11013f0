"""Bulk statements on PostgreSQL through Django's cursor (psycopg 3): binary COPY, multi-row VALUES.

Errors come out as Django's (`django.db.IntegrityError`, ...), like any other query's, so
callers need not know the driver.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connection


def copy_in(cursor, statement: str, data: bytes) -> None:
    """Run `COPY ... FROM STDIN` on Django's `cursor`, sending `data` (already encoded) as is."""
    with connection.wrap_database_errors, cursor.cursor.copy(statement) as copy:
        copy.write(data)


def execute_values(
    cursor,
    statement: str,
    rows: Iterable[Sequence],
    *,
    template: str | None = None,
    page_size: int = 1000,
    fetch: bool = False,
) -> list[tuple]:
    """Run `statement` (one `VALUES %s` placeholder) with `rows` as VALUES lists, a page at a time.

    `template` is one row's placeholder list, e.g. `(%s::bigint, %s::date)`; by default
    `(%s, ...)` as wide as the first row. With `fetch`, the rows every page returned.
    """
    rows = list(rows)
    if not rows:
        return []
    if template is None:
        template = "(" + ", ".join(["%s"] * len(rows[0])) + ")"
    head, placeholder, tail = statement.partition("%s")
    if not placeholder:
        raise ValueError("the statement needs one %s where the VALUES lists go")
    fetched: list[tuple] = []
    for start in range(0, len(rows), page_size):
        page = rows[start : start + page_size]
        params = [value for row in page for value in row]
        cursor.execute(head + ",".join([template] * len(page)) + tail, params)
        if fetch:
            fetched.extend(cursor.fetchall())
    return fetched


def update_rows(model, objs: Sequence, fields: Sequence[str], *, page_size: int = 1000) -> None:
    """`model.objects.bulk_update(objs, fields)` as ONE `UPDATE ... FROM (VALUES ...)` per
    page on PostgreSQL, matched on the primary key. Django's own builds a `CASE WHEN` per
    field and row, which for a batch of a few hundred rows costs more Python than the update
    takes in the database; on other databases Django's is used."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objs, fields, batch_size=500)
        return
    meta = model._meta
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    names = ", ".join(f.column for f in columns)
    sets = ", ".join(f"{f.column} = v.{f.column}" for f in columns[1:])
    pk = meta.pk.column
    template = "(" + ", ".join(f"%s::{f.db_type(connection)}" for f in columns) + ")"
    rows = [
        [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in columns] for obj in objs
    ]
    with connection.cursor() as cursor:
        execute_values(
            cursor,
            f"UPDATE {meta.db_table} AS t SET {sets} FROM (VALUES %s) AS v({names}) "
            f"WHERE t.{pk} = v.{pk}",
            rows,
            template=template,
            page_size=page_size,
        )
