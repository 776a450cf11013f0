"""The file exchange log's API (issue 16): `/api/exchange-logs/`, read-only, scoped to the
user's organisations, newest first, paged by cursor (rows written while a client pages
neither shift a page nor show twice), filtered and searched."""

from __future__ import annotations

import pytest

from reports.models import ExchangeLog
from tests.api_matrix import client_for
from tests.reports.engine_data import both_regions

pytestmark = pytest.mark.django_db
URL = "/api/exchange-logs/"


def export_row(target, number: int) -> ExchangeLog:
    return ExchangeLog.objects.create(
        target=target, organisation_id=target.organisation_id, direction="export",
        document="MeterReadings", day=f"2026-06-{number:02d}", state="done",
        filename=f"north-MeterReadings-202606{number:02d}.xml", size=100 + number,
    )  # fmt: skip


def test_the_log_is_scoped_and_read_only(world):
    a, b = both_regions(world)
    reader = client_for(world.operator_a)
    page = reader.get(URL).json()
    listed = {row["id"] for row in page["results"]}
    assert a.exchange_log.pk in listed and b.exchange_log.pk not in listed
    assert set(page) == {"next", "previous", "results"}  # a cursor page: no count
    [row] = [r for r in page["results"] if r["id"] == a.exchange_log.pk]
    assert row["state"] == "rejected" and row["target_name"] == a.exchange_target.name
    assert "rejected, nothing was imported" in row["report"]
    assert reader.get(f"{URL}{b.exchange_log.pk}/").status_code == 404
    assert reader.get(f"{URL}{a.exchange_log.pk}/").json()["filename"] == row["filename"]
    assert reader.delete(f"{URL}{a.exchange_log.pk}/").status_code in (403, 405)
    assert reader.post(URL, {}, format="json").status_code in (403, 405)
    assert client_for(world.customer).get(URL).status_code == 403
    # The other region sees its own row only.
    other = {r["id"] for r in client_for(world.operator_b).get(URL).json()["results"]}
    assert other == {b.exchange_log.pk}


def test_cursor_pages_are_stable_while_the_log_grows(world):
    a, _b = both_regions(world)
    for number in range(1, 8):
        export_row(a.exchange_target, number)
    reader = client_for(world.operator_a)
    first = reader.get(URL, {"page_size": 3, "direction": "export"}).json()
    seen = [row["id"] for row in first["results"]]
    assert len(seen) == 3 and seen == sorted(seen, reverse=True)  # newest first
    export_row(a.exchange_target, 8)  # written while the client pages: no shift, no repeat
    page = first
    while page["next"]:
        page = reader.get(page["next"]).json()
        seen += [row["id"] for row in page["results"]]
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == set(
        ExchangeLog.objects.filter(direction="export", day__lte="2026-06-07").values_list(
            "pk", flat=True
        )
    )
    back = reader.get(page["previous"]).json()
    assert [row["id"] for row in back["results"]] == seen[3:6]


def test_filters_search_and_bad_input(world):
    a, _b = both_regions(world)
    export_row(a.exchange_target, 1)
    reader = client_for(world.operator_a)
    rejected = reader.get(URL, {"state": "rejected"}).json()["results"]
    assert [r["id"] for r in rejected] == [a.exchange_log.pk]
    found = reader.get(URL, {"search": "MeterReadings-20260601"}).json()["results"]
    assert [r["filename"] for r in found] == ["north-MeterReadings-20260601.xml"]
    by_target = reader.get(URL, {"target": a.exchange_target.pk}).json()["results"]
    assert len(by_target) == 2
    assert reader.get(URL, {"cursor": "not-a-cursor"}).status_code == 400
    assert reader.get(URL, {"page_size": "null"}).status_code == 400
    assert reader.get(URL, {"state": "no-such-state"}).status_code == 400
