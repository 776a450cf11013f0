"""The suite's flush (tests/quick_flush.py) leaves every table empty: the activity log behind
its append-only trigger and the partitioned reading store included, and the trigger still
guards the log afterwards."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.color import no_style
from django.core.management.sql import emit_post_migrate_signal, sql_flush
from django.db import DatabaseError, connection, transaction

from accounts import audit, roles
from accounts.models import ActivityLog
from meters.store import IntervalReading
from tests import quick_flush
from tests.factories import make_world
from tests.meters.store.test_store import fill

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _all_tables() -> list[str]:
    return connection.introspection.django_table_names(only_existing=True, include_views=False)


@pytest.fixture(autouse=True)
def _migrated_state_back():
    """These tests flush by hand, without the post_migrate that `manage.py flush` sends: the
    content types, permissions and roles every later test needs are put back here. (Left
    out once, the test flush after the second test found nothing to delete and so sent no
    post_migrate either: the rest of that worker's tests ran without roles.)"""
    yield
    emit_post_migrate_signal(0, False, connection.alias)


def test_the_flush_empties_every_table_and_leaves_the_guards_standing():
    world = make_world()
    fill(world.grid_a.meters, datetime(2026, 5, 1, tzinfo=UTC))
    audit.record("test.flush", detail="before the flush")
    assert IntervalReading.objects.exists() and ActivityLog.objects.exists()
    filled = quick_flush.filled_tables(connection, _all_tables())
    assert len(filled) >= 10

    statements = sql_flush(no_style(), connection, reset_sequences=False)
    assert not any(s.startswith("TRUNCATE") for s in statements)  # the quick way was taken
    assert {s.split()[-1].strip('"') for s in statements if s.startswith("DELETE")} == set(filled)
    connection.ops.execute_sql_flush(statements)

    assert quick_flush.filled_tables(connection, _all_tables()) == []
    audit.record("test.flush", detail="after the flush")
    with pytest.raises(DatabaseError), transaction.atomic():
        ActivityLog.objects.all().delete()  # append-only, as before
    with connection.cursor() as cursor:  # replica mode ended with the flush's transaction
        cursor.execute("SHOW session_replication_role")
        assert cursor.fetchone()[0] == "origin"


def test_an_empty_database_deletes_nothing_and_still_gets_its_roles_back():
    assert quick_flush.filled_tables(connection, _all_tables()) != []  # roles, content types
    connection.ops.execute_sql_flush(sql_flush(no_style(), connection, reset_sequences=False))
    assert quick_flush.filled_tables(connection, _all_tables()) == []
    statements = sql_flush(no_style(), connection, reset_sequences=False)
    assert not any(s.startswith("DELETE") for s in statements)
    assert statements  # so Django's flush still sends post_migrate, which puts them back:
    call_command("flush", interactive=False, verbosity=0, reset_sequences=False)
    assert Group.objects.get(name=roles.OPERATOR).permissions.exists()
