"""The meter list: scoped search and filters, capped counting, bulk add-to-job with audit."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ActivityLog
from collection.models import ReadJob
from meters.choices import MeterStatus, Protocol
from meters.models import CommStatus, Meter
from meters.views import CappedPaginator

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def serials(response) -> set[str]:
    assert response.status_code == 200
    return {m.serial for m in response.context["meters"]}


def own(world):
    return {m.serial for m in world.grid_a.meters}


def test_other_organisation_never_appears_whatever_the_filter(world):
    client = client_for(world.operator_a)
    b = world.grid_b
    for params in (
        {},
        {"q": b.meters[0].serial},
        {"q": b.customers[0].account_number},
        {"node": b.region.pk},  # out of scope: dropped, so only own meters
        {"model": world.meter_model.pk},
        {"sort": "-last_read"},
    ):
        response = client.get("/meters/", params)
        assert serials(response) <= own(world), params
        table = response.content.decode().split("<tbody>")[1]
        assert b.meters[0].serial not in table and b.customers[0].name not in table


def test_search_by_serial_customer_account_and_address(world):
    client = client_for(world.operator_a)
    a = world.grid_a
    assert serials(client.get("/meters/", {"q": a.meters[1].serial.lower()})) == {
        a.meters[1].serial
    }
    assert serials(client.get("/meters/", {"q": a.customers[0].name})) == {a.meters[0].serial}
    assert serials(client.get("/meters/", {"q": a.customers[1].account_number})) == {
        a.meters[1].serial
    }
    assert serials(client.get("/meters/", {"q": "2 NA Street"})) == {a.meters[1].serial}


def test_filters_node_model_protocol_status_and_read_age(world):
    client = client_for(world.operator_a)
    a = world.grid_a
    extra = Meter.objects.create(
        serial="NA-STOCK-1",
        meter_model=world.meter_model,
        organisation=world.org_a,
        protocol=Protocol.MODBUS,
        status=MeterStatus.IN_STOCK,
    )
    now = timezone.now()
    CommStatus.objects.create(meter=a.meters[0], last_success=now - timedelta(minutes=5))
    CommStatus.objects.create(meter=a.meters[1], last_success=now - timedelta(days=5))
    assert serials(client.get("/meters/", {"node": a.transformer.pk})) == own(world)
    assert serials(client.get("/meters/", {"node": a.service_points[0].pk})) == {a.meters[0].serial}
    assert serials(client.get("/meters/", {"protocol": "modbus"})) == {extra.serial}
    assert serials(client.get("/meters/", {"status": "in_stock"})) == {extra.serial}
    assert serials(client.get("/meters/", {"model": world.meter_model.pk})) == own(world) | {
        extra.serial
    }
    assert serials(client.get("/meters/", {"read": "today"})) == {a.meters[0].serial}
    assert serials(client.get("/meters/", {"read": "over3d"})) == {a.meters[1].serial}
    assert serials(client.get("/meters/", {"read": "never"})) == {extra.serial}
    assert serials(client.get("/meters/", {"read": "1-3d"})) == set()
    # Sorting by last read puts the freshest first.
    response = client.get("/meters/", {"sort": "-last_read"})
    assert [m.serial for m in response.context["meters"]][:2] == [
        a.meters[0].serial,
        a.meters[1].serial,
    ]


def test_count_is_capped_and_late_pages_still_work(world, monkeypatch):
    monkeypatch.setattr(CappedPaginator, "cap", 30)
    Meter.objects.bulk_create(
        Meter(serial=f"NZ{i:04d}", meter_model=world.meter_model, organisation=world.org_a)
        for i in range(118)
    )
    client = client_for(world.operator_a)
    first = client.get("/meters/")
    assert first.context["paginator"].count == 30 and first.context["capped"]
    assert "30+" in first.content.decode()
    late = client.get("/meters/", {"page": 3})
    assert len(late.context["meters"]) == 20 and not late.context["page_obj"].more
    past = client.get("/meters/", {"page": 9})  # past the end: the first page, not an error
    assert past.status_code == 200 and past.context["page_obj"].number == 1


def test_export_links_carry_the_filters(world):
    response = client_for(world.operator_a).get("/meters/", {"q": "NA", "status": "active"})
    html = response.content.decode()
    assert "/meters/export.csv?q=NA&amp;status=active" in html


def job_for(organisation, name="Nightly") -> ReadJob:
    return ReadJob.objects.create(name=name, organisation=organisation)


def test_bulk_add_selected_meters_to_a_job_is_scoped_and_audited(world):
    job = job_for(world.org_a)
    a, b = world.grid_a, world.grid_b
    response = client_for(world.operator_a).post(
        "/meters/",
        {
            "action": "add_to_job",
            "job": job.pk,
            "meter": [a.meters[0].pk, b.meters[0].pk],  # the other organisation's is ignored
            "filters": "",
        },
    )
    assert response.status_code == 302
    assert set(job.meters.values_list("serial", flat=True)) == {a.meters[0].serial}
    log = ActivityLog.objects.get(action="read_job_add_meters")
    assert log.user == world.operator_a and log.object_id == str(job.pk)
    assert log.changes["added"] == 1


def test_bulk_add_all_filtered_meters(world):
    job = job_for(world.org_a)
    client_for(world.operator_a).post(
        "/meters/",
        {"action": "add_to_job", "job": job.pk, "all_filtered": "1", "filters": "q=NA000002"},
    )
    assert list(job.meters.values_list("serial", flat=True)) == [world.grid_a.meters[1].serial]
    # Again: nothing new, still audited.
    client_for(world.operator_a).post(
        "/meters/", {"action": "add_to_job", "job": job.pk, "all_filtered": "1", "filters": ""}
    )
    assert job.meters.count() == 2
    assert ActivityLog.objects.filter(action="read_job_add_meters").count() == 2


@pytest.mark.parametrize(
    "filters",
    ["node={b_region}", "node=999999", "status=nonsense", "read=yesterday", "protocol=x"],
)
def test_bulk_add_with_a_filter_it_cannot_apply_is_refused(world, filters):
    """A foreign grid node must not widen 'all matching' to the user's whole region."""
    job = job_for(world.org_a)
    response = client_for(world.operator_a).post(
        "/meters/",
        {
            "action": "add_to_job",
            "job": job.pk,
            "all_filtered": "1",
            "filters": filters.format(b_region=world.grid_b.region.pk),
        },
        follow=True,
    )
    assert job.meters.count() == 0
    assert not ActivityLog.objects.filter(action="read_job_add_meters").exists()
    assert "Nothing added: unknown filter values" in response.content.decode()
    # The same filter with the user's own node adds exactly that subtree.
    client_for(world.operator_a).post(
        "/meters/",
        {
            "action": "add_to_job",
            "job": job.pk,
            "all_filtered": "1",
            "filters": f"node={world.grid_a.service_points[0].pk}",
        },
    )
    assert list(job.meters.values_list("serial", flat=True)) == [world.grid_a.meters[0].serial]


def test_bulk_add_refuses_other_jobs_and_read_only_users(world):
    other_job = job_for(world.org_b, "South nightly")
    own_job = job_for(world.org_a)
    meter = world.grid_a.meters[0]
    post = {"action": "add_to_job", "meter": [meter.pk], "filters": ""}
    # Another organisation's job: 404, nothing written.
    assert (
        client_for(world.operator_a).post("/meters/", {**post, "job": other_job.pk}).status_code
        == 404
    )
    # An analyst may look, not change read jobs.
    assert (
        client_for(world.readonly_a).post("/meters/", {**post, "job": own_job.pk}).status_code
        == 404
    )
    # The other organisation's operator cannot add our meters to their own job.
    client_for(world.operator_b).post("/meters/", {**post, "job": other_job.pk})
    assert other_job.meters.count() == 0 and own_job.meters.count() == 0


def test_job_of_a_parent_organisation_gets_only_meters_inside_it(world):
    """A utility-level user adding meters to a regional job cannot widen the job."""
    job = job_for(world.org_a)
    client_for(world.superuser).post(
        "/meters/",
        {
            "action": "add_to_job",
            "job": job.pk,
            "meter": [world.grid_a.meters[0].pk, world.grid_b.meters[0].pk],
            "filters": "",
        },
    )
    assert list(job.meters.values_list("serial", flat=True)) == [world.grid_a.meters[0].serial]


def test_node_filter_offers_own_grid_indented_marks_the_chosen_and_escapes(world):
    a, b = world.grid_a, world.grid_b
    a.feeder.name = "<b>Feeder</b>"
    a.feeder.save(update_fields=["name"])
    html = client_for(world.operator_a).get(f"/meters/?node={a.feeder.pk}").content.decode()
    select = html[html.index('id="node"') : html.index("</select>", html.index('id="node"'))]
    assert f'<option value="{a.region.pk}">{a.region.code} ' in select
    assert f'<option value="{a.feeder.pk}" selected>·· {a.feeder.code} &lt;b&gt;' in select
    assert f'value="{b.region.pk}"' not in select
