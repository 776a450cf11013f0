"""Dashboard pages of the registry: scoped lists, 404 out of scope, paging and search."""

import pytest
from django.test import Client

from meters.models import Meter

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_meter_list_shows_only_own_organisation(world):
    page = client_for(world.operator_a).get("/meters/")
    assert page.status_code == 200
    serials = {m.serial for m in page.context["page_obj"]}
    assert serials == {m.serial for m in world.grid_a.meters}
    assert world.grid_b.meters[0].serial not in page.content.decode()


def test_meter_search_by_customer_account_and_status(world):
    client = client_for(world.operator_a)
    page = client.get("/meters/", {"q": world.grid_a.customers[1].account_number})
    assert [m.serial for m in page.context["page_obj"]] == [world.grid_a.meters[1].serial]
    # Searching for the other organisation's account finds nothing.
    page = client.get("/meters/", {"q": world.grid_b.customers[0].account_number})
    assert list(page.context["page_obj"]) == []
    page = client.get("/meters/", {"status": "faulty"})
    assert list(page.context["page_obj"]) == []


def test_meter_list_pages_server_side(world):
    for i in range(60):
        Meter.objects.create(
            serial=f"NZ{i:04d}", meter_model=world.meter_model, organisation=world.org_a
        )
    client = client_for(world.operator_a)
    first = client.get("/meters/")
    assert len(first.context["page_obj"]) == 50 and first.context["paginator"].count == 62
    second = client.get("/meters/", {"page": 2})
    assert len(second.context["page_obj"]) == 12


def test_meter_detail_scoped_and_secrets_masked(world):
    client = client_for(world.operator_a)
    own = client.get(f"/meters/{world.grid_a.meters[0].serial}/")
    assert own.status_code == 200
    assert b"secret-pw-1" not in own.content and b"set" in own.content
    assert client.get(f"/meters/{world.grid_b.meters[0].serial}/").status_code == 404


def test_grid_tree_shows_own_grid_with_counts(world):
    page = client_for(world.operator_a).get("/grid/")
    html = page.content.decode()
    assert world.grid_a.transformer.code in html and "2 meters" in html
    assert world.grid_b.region.code not in html


def test_customer_cannot_open_operator_pages(world):
    client = client_for(world.customer)
    assert client.get("/meters/").status_code == 403
    assert client.get("/grid/").status_code == 403


def test_anonymous_is_sent_to_login(world):
    response = Client().get("/meters/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_meter_page_asks_as_many_queries_for_many_runs_and_commands_as_for_one(world):
    """The panels read the columns they show with their rows: a column left out would be read
    again for every run or command shown (the page's query count would grow with them)."""
    from datetime import timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from collection.models import JobRun, MeterCommand, MeterReadResult, ReadJob

    meter = world.grid_a.meters[0]
    client = Client()
    client.force_login(world.engineer_a)

    def add(n):
        for i in range(n):
            job = ReadJob.objects.create(name=f"job {i}", organisation=world.org_a)
            run = JobRun.objects.create(job=job, organisation=world.org_a, status="partial")
            MeterReadResult.objects.create(run=run, meter=meter, status="failed", error="x")
            MeterCommand.objects.create(
                organisation=world.org_a, meter=meter, kind="relay_read", reason="why",
                requested_by=world.operator_a, expires_at=timezone.now() + timedelta(hours=1),
            )  # fmt: skip

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            page = client.get(f"/meters/{meter.serial}/")
        assert page.status_code == 200
        html = page.content.decode()
        assert "job 0" in html and world.operator_a.username in html  # both panels shown
        return len(captured.captured_queries)

    add(1)
    queries()  # the first request also fills the user's caches
    one = queries()
    add(4)
    assert queries() == one
