"""amisite.pgbulk: rows sent as one array per column, whatever they hold."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from django.db import DataError, connection, transaction

from accounts.models import Organisation
from amisite import pgbulk
from collection.models import JobRun, MeterReadResult
from meters.models import Meter
from tests.factories import make_meter_model

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

AWKWARD = ["plain", 'quo"te', "apo'strophe", "back\\slash", "{brace}", "comma, here", "", None]


@pytest.fixture
def table():
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bulk_t (id bigint PRIMARY KEY, name text, at timestamptz,"
            " day date, doc jsonb, small smallint)"
        )
    yield "bulk_t"
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bulk_t")


def test_every_value_arrives_as_it_was_sent(table):
    at = datetime(2026, 3, 29, 1, 15, tzinfo=UTC)
    rows = [
        (2**40 + i, name, None if i % 3 else at, date(2026, 1, 1 + i), '{"a": [1, "x\\"y"]}', i)
        for i, name in enumerate(AWKWARD)
    ]
    insert = f"INSERT INTO {table} (id, name, at, day, doc, small) %s RETURNING id"
    types = ["bigint", "text", "timestamptz", "date", "jsonb", "smallint"]
    with connection.cursor() as cursor:
        # Three statements of at most three rows each.
        back = pgbulk.execute_rows(cursor, insert, rows, types, page_size=3, fetch=True)
        assert sorted(back) == [(row[0],) for row in rows]
        cursor.execute(f"SELECT id, name, at, day, doc, small FROM {table} ORDER BY id")
        stored = cursor.fetchall()
    assert [(*r[:4], json.loads(r[4]), r[5]) for r in stored] == [
        (*row[:4], {"a": [1, 'x"y']}, row[5]) for row in rows
    ]


def test_a_column_of_nulls_only(table):
    with connection.cursor() as cursor:
        pgbulk.execute_rows(
            cursor,
            f"INSERT INTO {table} (id, at) %s",
            [(1, None), (2, None)],
            ["bigint", "timestamptz"],
        )
        cursor.execute(f"SELECT count(*) FROM {table} WHERE at IS NULL")
        assert cursor.fetchone() == (2,)


def test_no_rows_sends_nothing_and_a_bad_statement_is_refused(table):
    with connection.cursor() as cursor:
        assert pgbulk.execute_rows(cursor, "not even SQL %s", [], ["bigint"]) == []
        with pytest.raises(ValueError, match="one %s"):
            pgbulk.execute_rows(cursor, f"INSERT INTO {table} (id) VALUES (1)", [(1,)], ["bigint"])
        with pytest.raises(ValueError, match="2 types for rows of 1"):
            pgbulk.execute_rows(cursor, f"INSERT INTO {table} (id) %s", [(1,)], ["bigint", "text"])
        # The database's own errors, as Django's (and the transaction stays usable).
        with pytest.raises(DataError), transaction.atomic():
            pgbulk.execute_rows(
                cursor, f"INSERT INTO {table} (id, small) %s", [(1, 2**20)], ["bigint", "smallint"]
            )


def test_update_rows_writes_every_field_kind():
    organisation = Organisation.objects.create(name="Bulk", code="bulk")
    meter = Meter.objects.create(
        serial="BULK1", meter_model=make_meter_model(organisation), organisation=organisation
    )
    run = JobRun.objects.create(organisation=meter.organisation)
    result = MeterReadResult.objects.create(run=run, meter=meter)
    result.status, result.error = "failed", "it said 'no' {twice}, \\ then \"nothing\""
    result.retryable, result.attempts, result.data = True, 3, {"clock": None, "k": ["v", 1]}
    result.finished_at = datetime(2026, 12, 5, 11, 0, tzinfo=UTC)
    pgbulk.update_rows(
        MeterReadResult,
        [result],
        ["status", "error", "retryable", "attempts", "data", "finished_at"],
    )
    stored = MeterReadResult.objects.get(pk=result.pk)
    assert (stored.status, stored.error, stored.retryable, stored.attempts, stored.data) == (
        "failed",
        result.error,
        True,
        3,
        {"clock": None, "k": ["v", 1]},
    )
    assert stored.finished_at == result.finished_at
