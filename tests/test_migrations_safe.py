"""Zero-downtime upgrades: a new migration must be safe to apply while the previous release
still runs (docs/operations.md, "Upgrades without downtime").

django-migration-linter reads the SQL of each migration not yet released and refuses what
would break the running release or hold long locks on live tables: dropping or renaming a
column or table the old code still uses, NOT NULL columns without a database default,
`CREATE INDEX` without `CONCURRENTLY`, unique constraints added to filled tables. Migrations
that are already released are listed in `tests/migrations_released.txt` (appended when a
release is cut, never edited): they were applied under their own release's rules.
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django_migration_linter import MigrationLinter

pytestmark = pytest.mark.django_db

RELEASED = Path(__file__).with_name("migrations_released.txt")
PROJECT_APPS = ("accounts", "meters", "collection", "loadcontrol", "reports", "vending", "portal")


def released() -> set[tuple[str, str]]:
    lines = RELEASED.read_text().splitlines()
    return {tuple(line.split("/", 1)) for line in lines if line and not line.startswith("#")}


def project_migrations() -> dict[tuple[str, str], object]:
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    return {key: m for key, m in loader.disk_migrations.items() if key[0] in PROJECT_APPS}


def lint(migrations) -> tuple[MigrationLinter, str]:
    linter = MigrationLinter(no_cache=True, quiet=["ok", "ignore"])
    output = io.StringIO()
    with redirect_stdout(output):
        for migration in migrations:
            linter.lint_migration(migration)
    return linter, output.getvalue()


def test_every_unreleased_migration_is_safe_for_a_rolling_upgrade():
    on_disk = project_migrations()
    assert released() <= set(on_disk), (
        f"released migrations missing from disk: {sorted(released() - set(on_disk))}"
    )
    new = [on_disk[key] for key in sorted(set(on_disk) - released())]
    linter, output = lint(new)
    assert not linter.has_errors, (
        "migrations unsafe while the previous release runs (split them: add nullable/with a "
        "db_default, backfill, then constrain; AddIndexConcurrently in a non-atomic "
        f"migration; drop columns a release after the code stops using them):\n{output}"
    )


def test_the_linter_refuses_what_locks_or_breaks():
    """The check can fail: a released migration that added NOT NULL columns and plain
    indexes to live tables is refused by the same call."""
    on_disk = project_migrations()
    linter, output = lint([on_disk[("vending", "0002_vending_audit_controls")]])
    assert linter.has_errors
    assert "CREATE INDEX locks table" in output
