"""The suite's flush after each transactional test: DELETE from the tables that hold rows.

Django empties the test database after every transactional test (264 of them) with one
TRUNCATE of all ~90 tables: 0.5-0.6 s each time on a quiet machine, about a second under
the suite's load, most of it PostgreSQL making new files for every table and index. A
DELETE from the 10-15 tables a test filled takes ~30 ms. Rows are deleted with the session
in replica mode, so the tables' triggers (the activity log's append-only guard, foreign key
checks) do not fire: every table ends empty, so no reference is left dangling.

Used only where it can be: PostgreSQL, a superuser (replica mode needs one; CI's and the
machine's `postgres`), and a flush that keeps sequences (as the test teardown's does; the
flush command's own default resets them). Anywhere else,
Django's own TRUNCATE. tests/test_quick_flush.py proves that every table ends empty.
"""

from __future__ import annotations

from django.db.backends.postgresql.operations import DatabaseOperations

_django_sql_flush = DatabaseOperations.sql_flush


def install() -> None:
    DatabaseOperations.sql_flush = _sql_flush


def uninstall() -> None:
    DatabaseOperations.sql_flush = _django_sql_flush


def _sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
    if reset_sequences or not tables or not _superuser(self.connection):
        return _django_sql_flush(
            self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
    filled = filled_tables(self.connection, tables)
    # Run by Django in one transaction (execute_sql_flush): SET LOCAL ends with it. Never an
    # empty list, even with nothing to delete: Django sends post_migrate only after a flush
    # that had statements, and post_migrate is what puts back the content types,
    # permissions and roles of a database emptied some other way.
    return ["SET LOCAL session_replication_role = replica"] + [
        f"DELETE FROM {self.quote_name(table)}" for table in filled
    ]


def filled_tables(connection, tables) -> list[str]:
    """The tables among `tables` that hold at least one row, in one statement."""
    quote = connection.ops.quote_name
    probes = " UNION ALL ".join(
        f"SELECT %s WHERE EXISTS (SELECT 1 FROM {quote(table)})" for table in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(probes, list(tables))
        return [row[0] for row in cursor.fetchall()]


def _superuser(connection) -> bool:
    known = getattr(connection, "_ami_superuser", None)
    if known is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            row = cursor.fetchone()
        known = connection._ami_superuser = bool(row and row[0])
    return known
