"""`/api/readings/` and `/api/events/` (meters/api/readings.py): the stored readings and
events of the caller's meters, paged by key in the store's order.

Walking every page gives exactly the stored rows of the caller's meters, once each and in
key order, with exact decimal strings; organisation B's meters never appear and their ids
are refused like ids that do not exist; a forged cursor is a 400; a page costs the same
number of queries however large; readings arriving during a walk shift nothing; a
compacted month answers the same as the live one (PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import signing
from django.db import connection

from meters.choices import ChannelKind
from meters.models import Channel, Meter
from meters.store import Quality, compaction, partitions, query
from meters.store.writes import write_events, write_intervals, write_registers
from tests.api_matrix import client_for
from tests.meters.store.test_compaction import Column, Rows

pytestmark = pytest.mark.django_db

DAY = datetime(2025, 3, 3, tzinfo=UTC)  # a closed month: compactable on PostgreSQL
QH = timedelta(minutes=15)
E, M = int(Quality.ESTIMATED), int(Quality.MISSING)


def profile(meter) -> tuple[Channel, Channel]:
    found = Channel.objects.filter(meter_model_id=meter.meter_model_id, kind=ChannelKind.PROFILE)
    return found.get(obis="1-0:1.29.0*255"), found.get(obis="1-0:2.29.0*255")


def rows_of(meter, count: int, first: datetime = DAY) -> Rows:
    imp, exp = profile(meter)
    stamps = [first + QH * (k + 1) for k in range(count)]
    values = [100 + (meter.pk * 7 + k * 13) % 400 for k in range(count)]
    flags = [E if k % 5 == 2 else 0 for k in range(count)]
    if count > 3:
        values[3], flags[3] = None, M
    big = [5_000_000_000 + k for k in range(count)]  # beyond 32 bits
    return Rows(
        meter.pk,
        imp.profile_group,
        stamps,
        {imp.profile_column: Column(values, flags), exp.profile_column: Column(big, [0] * count)},
    )


@pytest.fixture
def stored(world):
    partitions._known.clear()  # months made by an earlier test were rolled back with it
    meters = [*world.grid_a.meters, *world.grid_b.meters]
    batch = [rows_of(m, 30) for m in meters]
    write_intervals(batch)
    return batch


def walk(client, url, params, size=None):
    """Every page's rows, following `next` (from `url` as it is without `size`)."""
    response = client.get(url, {**params, "page_size": size}) if size else client.get(url)
    out, pages = [], 0
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        out += body["results"]
        pages += 1
        if not body["next"]:
            return out, pages
        response = client.get(body["next"])


RANGE = {"from": "2025-03-03", "to": "2025-03-04"}


def expected_profile(batch, meters):
    """Rows as the API must give them: key order (meter, group, ts), exact strings."""
    out = []
    for rows in sorted(batch, key=lambda r: r.meter_id):
        if rows.meter_id not in meters:
            continue
        imp, exp = profile(Meter.objects.get(pk=rows.meter_id))
        for k, ts in enumerate(rows.timestamps):
            values = []
            for channel in sorted((imp, exp), key=lambda c: c.profile_column):
                column = rows.columns[channel.profile_column]
                value = column.values[k]
                values.append({
                    "obis": channel.obis, "unit": channel.unit,
                    "value": None if value is None else str(Decimal(value).scaleb(channel.scaler)),
                    "quality": {0: "", E: "estimated", M: "missing"}[column.flags[k]],
                })  # fmt: skip
            out.append({
                "meter": rows.meter_id, "serial": Meter.objects.get(pk=rows.meter_id).serial,
                "kind": "profile", "ts": ts.isoformat().replace("+00:00", "Z"),
                "capture_time": None, "values": values,
            })  # fmt: skip
    return out


def test_pages_give_every_row_of_the_scope_once_in_key_order(world, stored):
    client = client_for(world.readonly_a)
    mine = {m.pk for m in world.grid_a.meters}
    got, pages = walk(client, "/api/readings/", RANGE, 7)
    assert got == expected_profile(stored, mine)
    assert pages == -(-len(got) // 7) and len(got) == 30 * len(mine)
    assert not {row["meter"] for row in got} - mine  # B's meters never appear
    # Organisation B's analyst sees B's rows only.
    theirs, _ = walk(client_for(world.operator_b), "/api/readings/", RANGE, 1000)
    assert {row["meter"] for row in theirs} == {m.pk for m in world.grid_b.meters}


def test_filters_meter_and_channel(world, stored):
    client = client_for(world.readonly_a)
    meter = world.grid_a.meters[1]
    got, _ = walk(client, "/api/readings/", {**RANGE, "meter": meter.pk, "obis": "1-0:2.29.0"}, 9)
    assert len(got) == 30 and {row["meter"] for row in got} == {meter.pk}
    assert {tuple(v["obis"] for v in row["values"]) for row in got} == {("1-0:2.29.0*255",)}
    assert got[0]["values"][0]["value"] == "5000000000"
    # A channel no meter has: nothing; an OBIS code that is none: 400 naming it.
    assert client.get("/api/readings/", {**RANGE, "obis": "1-0:9.9.9"}).json()["results"] == []
    assert "obis" in client.get("/api/readings/", {**RANGE, "obis": "nonsense"}).json()


def test_a_foreign_meter_is_answered_like_one_that_does_not_exist(world, stored):
    client = client_for(world.readonly_a)
    foreign = client.get("/api/readings/", {**RANGE, "meter": world.grid_b.meters[0].pk})
    missing = client.get("/api/readings/", {**RANGE, "meter": 10**9})
    assert foreign.status_code == missing.status_code == 400
    assert foreign.json() == missing.json()
    for url in ("/api/events/",):
        foreign = client.get(url, {"meter": world.grid_b.meters[0].pk})
        missing = client.get(url, {"meter": 10**9})
        assert foreign.status_code == 400 and foreign.json() == missing.json()


@pytest.mark.parametrize(
    ("params", "field_name"),
    [
        ({"from": "2025-03-01", "to": "2025-04-15"}, "to"),  # longer than 31 days
        ({"from": "2025-03-05", "to": "2025-03-01"}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2025-02-30"}, "to"),
        ({"from": "1000-01-01"}, "from"),
        ({"kind": "voltage"}, "kind"),
        ({"page_size": "0"}, "page_size"),
    ],
)
def test_bad_values_are_400_naming_the_field(world, params, field_name):
    for url in ("/api/readings/", "/api/events/"):
        if field_name == "kind" and url == "/api/events/":
            continue
        response = client_for(world.readonly_a).get(url, params)
        assert response.status_code == 400, (url, params)
        assert field_name in response.json(), response.json()


def test_31_days_are_accepted_across_a_dst_change(world, settings):
    settings.AMI_TIME_ZONE = "Europe/Berlin"  # 2025-03-30: 23 hours
    client = client_for(world.readonly_a)
    assert (
        client.get("/api/readings/", {"from": "2025-03-10", "to": "2025-04-09"}).status_code == 200
    )
    assert (
        client.get("/api/readings/", {"from": "2025-03-10", "to": "2025-04-10"}).status_code == 400
    )


def test_a_cursor_this_api_did_not_give_is_400(world, stored):
    client = client_for(world.readonly_a)
    first = client.get("/api/readings/", {**RANGE, "page_size": 2}).json()
    cursor = first["next"].split("cursor=")[1].split("&")[0]
    forged = [
        "garbage",
        cursor[:-3] + "abc",
        signing.dumps(["p", 1, 0, DAY.isoformat()], salt="someone else's"),
        signing.dumps(["p", 1, 0, DAY.isoformat()]),
    ]
    for text in forged:
        response = client.get("/api/readings/", {**RANGE, "cursor": text})
        assert response.status_code == 400 and "cursor" in response.json(), text
    # Another list's cursor, or the other kind's, is no position here either.
    events = signing.dumps([1, "x", DAY.isoformat(), 1], salt="amisite.pagination.keyset:events")
    assert client.get("/api/readings/", {"cursor": events}).status_code == 400
    registers = client.get("/api/readings/", {**RANGE, "cursor": cursor, "kind": "register"})
    assert registers.status_code == 400


def test_readings_arriving_during_a_walk_shift_nothing(world, stored):
    client = client_for(world.readonly_a)
    a1, a2 = world.grid_a.meters
    before = expected_profile(stored, {a1.pk, a2.pk})
    page = client.get("/api/readings/", {**RANGE, "page_size": 40}).json()
    got = page["results"]
    assert got == before[:40]  # all of a1 and 10 of a2
    # New rows meanwhile: behind the position (a1) and ahead of it (a2, later intervals).
    write_intervals([rows_of(a1, 10, DAY + QH * 30), rows_of(a2, 10, DAY + QH * 30)])
    rest, _ = walk(client, page["next"], {})
    got += rest
    keys = [(r["meter"], r["ts"]) for r in got]
    assert len(keys) == len(set(keys))  # nothing twice
    assert [r for r in got if r in before] == before  # nothing lost, order kept
    new = [r for r in got if r not in before]
    assert {r["meter"] for r in new} == {a2.pk} and len(new) == 10  # ahead: seen


def test_register_reads(world):
    client = client_for(world.readonly_a)
    reads = {}
    for meter in [*world.grid_a.meters, *world.grid_b.meters]:
        channel = Channel.objects.get(
            meter_model_id=meter.meter_model_id, kind=ChannelKind.REGISTER, obis="1-0:1.8.0*255"
        )
        for k in range(3):
            reads[meter.pk, channel.pk, DAY + timedelta(hours=k + 1)] = [
                123_456_789_012 + k, None, E if k == 1 else 0,
            ]  # fmt: skip
    write_registers(reads)
    got, pages = walk(client, "/api/readings/", {**RANGE, "kind": "register"}, 2)
    mine = sorted(k for k in reads if k[0] in {m.pk for m in world.grid_a.meters})
    assert [(r["meter"], r["ts"]) for r in got] == [
        (m, t.isoformat().replace("+00:00", "Z")) for m, _c, t in mine
    ]
    assert pages == 3
    assert got[0]["values"] == [
        {"obis": "1-0:1.8.0*255", "unit": "Wh", "value": "123456789012", "quality": ""}
    ]
    assert got[1]["values"][0]["quality"] == "estimated"
    only = client.get("/api/readings/", {**RANGE, "kind": "register", "obis": "1-0:2.8.0"})
    assert only.json() == {"next": None, "results": []}


def test_query_count_is_the_same_for_any_page(world, stored, django_assert_max_num_queries):
    client = client_for(world.readonly_a)
    for size in (3, 60):
        with django_assert_max_num_queries(9):  # session, user, permissions + 5 of its own
            body = client.get("/api/readings/", {**RANGE, "page_size": size}).json()
        with django_assert_max_num_queries(9):
            client.get(body["next"] or "/api/readings/")
    for size in (1, 60):
        with django_assert_max_num_queries(9):
            client.get("/api/events/", {**RANGE, "page_size": size})


def test_events_paged_in_key_order_scoped_and_filtered(world):
    client = client_for(world.readonly_a)
    rows = {}
    for meter in [*world.grid_a.meters, *world.grid_b.meters]:
        for k in range(4):
            log = "0-0:99.98.0*255" if k % 2 else "0-0:99.98.1*255"
            rows[meter.pk, log, DAY + timedelta(hours=k), 1 + k] = f"[{k}]"
    write_events(rows)
    got, pages = walk(client, "/api/events/", RANGE, 3)
    mine = sorted(k for k in rows if k[0] in {m.pk for m in world.grid_a.meters})
    assert [(r["meter"], r["log"], r["ts"], r["code"]) for r in got] == [
        (m, log, ts.isoformat().replace("+00:00", "Z"), code) for m, log, ts, code in mine
    ]
    assert pages == 3 and all(r["data"] == [r["code"] - 1] and r["kind"] for r in got)
    meter = world.grid_a.meters[0]
    only = client.get("/api/events/", {**RANGE, "meter": meter.pk, "code": 2}).json()["results"]
    assert [(r["meter"], r["code"]) for r in only] == [(meter.pk, 2)]
    by_log = client.get("/api/events/", {**RANGE, "log": "0-0:99.98.1*255"}).json()["results"]
    assert {r["code"] for r in by_log} == {1, 3} and len(by_log) == 4
    assert "code" in client.get("/api/events/", {"code": "1.5"}).json()
    garbled = client.get("/api/events/", {"cursor": "eyJhIjoxfQ:1x:abc"})
    assert garbled.status_code == 400


def test_customers_and_anonymous_get_nothing(world):
    from rest_framework.test import APIClient

    for url in ("/api/readings/", "/api/events/"):
        assert client_for(world.customer).get(url).status_code == 403
        assert APIClient().get(url).status_code in (401, 403)


@pytest.mark.postgres
def test_a_compacted_month_answers_as_the_live_one(world, stored):
    client = client_for(world.readonly_a)
    params = {"from": "2025-03-02", "to": "2025-03-04"}
    live, _ = walk(client, "/api/readings/", params, 11)
    assert len(live) == 60
    done = compaction.compact_month(DAY.date())
    assert done["rows"] == 30 * 4 and done["packed"] > 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partitions.partition_name(DAY.date())}")
        assert cursor.fetchone()[0] == 0  # every row now compacted
    compacted, _ = walk(client, "/api/readings/", params, 11)
    assert compacted == live
    # Half live, half compacted: late rows go back to the interval table for their days.
    write_intervals([rows_of(world.grid_a.meters[0], 2, DAY + QH * 40)])
    mixed, _ = walk(client, "/api/readings/", params, 7)
    assert mixed[:30] == live[:30] and len(mixed) == 62 and mixed[32:] == live[30:]


def recent_readings(meter) -> None:
    """Yesterday's intervals, a register read and an event of `meter`: rows the endpoints'
    default range (the last 7 days) shows (the schema-vs-answers test seeds them)."""
    partitions._known.clear()
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = midnight - timedelta(days=1)
    write_intervals([rows_of(meter, 8, yesterday)])
    channel = Channel.objects.get(
        meter_model_id=meter.meter_model_id, kind=ChannelKind.REGISTER, obis="1-0:1.8.0*255"
    )
    write_registers({(meter.pk, channel.pk, yesterday + QH): [12_345, yesterday, 0]})
    write_events({(meter.pk, "0-0:99.98.0*255", yesterday + QH, 1): "[]"})


def test_meters_without_readings_between_are_stepped_over(world, stored):
    """The store reads a window of meters at a time (`query.interval_rows_after`): a page
    whose first windows hold no readings reads on until it is full or the scope ends."""
    model = world.grid_a.meters[0].meter_model
    empty = Meter.objects.bulk_create(
        Meter(serial=f"NE{i:04d}", meter_model=model, organisation=world.org_a, host="h")
        for i in range(45)
    )
    last = Meter.objects.create(serial="NZ0001", meter_model=model, organisation=world.org_a)
    write_intervals([rows_of(last, 5)])
    assert len(empty) + 2 > query.WINDOW * 4  # two windows of nothing before `last`
    got, _ = walk(client_for(world.readonly_a), "/api/readings/", RANGE, 59)
    assert [r["meter"] for r in got] == sorted([m.pk for m in world.grid_a.meters] * 30) + [
        last.pk
    ] * 5
