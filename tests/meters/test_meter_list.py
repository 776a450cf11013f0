"""The meter list: scoped search and filters, capped counting, bulk add-to-job with audit."""

from datetime import UTC, datetime, timedelta

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


# The list's row as the template wrote it before the rows were built in Python (one row of
# `{% for meter in meters %}`); meter_rows must give the same bytes.
ROW_TEMPLATE = """{% for meter in meters %}
    <tr>
      {% if bulk_panels %}<td class="sel"><input type="checkbox" name="meter" value="{{ meter.pk }}" aria-label="select {{ meter.serial }}"></td>{% endif %}
      <td><a href="{% url 'meters:meter-detail' meter.serial %}">{{ meter.serial }}</a></td>
      <td class="hide-sm">{{ meter.meter_model }}</td>
      <td>{{ meter.get_status_display }}</td>
      <td><span class="dot h-{{ meter.health }}" title="{{ meter.health }}"></span> {% if meter.comm_status.last_success %}{{ meter.comm_status.last_success|timesince }} ago{% else %}<span class="muted">never</span>{% endif %}</td>
      <td class="hide-sm">{% if meter.customer %}{{ meter.customer.name }} <span class="muted">{{ meter.customer.account_number }}</span>{% else %}–{% endif %}</td>
      <td class="hide-sm">{{ meter.service_point.code|default:"–" }}{% if meter.service_point.address %} <span class="muted">{{ meter.service_point.address }}</span>{% endif %}</td>
      <td class="hide-sm">{{ meter.get_protocol_display }}</td>
      <td class="hide-sm">{{ meter.install_date|default:"–" }}</td>
    </tr>
  {% endfor %}"""  # noqa: E501


def test_the_lists_rows_are_what_the_template_wrote(world, django_assert_num_queries):
    """Rows built in Python (meters/views.py meter_rows) equal the template's to the byte:
    a serial, customer and address that need escaping, no customer, no service point, no
    comm status, never read, no install date, with and without the selection column."""
    from django.template import Context, Template

    from meters.models import GridNode
    from meters.views import MeterListView, _meter_health, meter_rows

    a = world.grid_a
    odd, plain = a.meters[0], a.meters[1]
    odd.serial = "A&<b>\"1'+é"
    odd.install_date = None
    odd.save()
    customer = a.customers[0]
    customer.name, customer.account_number = "O'Brien & <Sons>", "ACC&1"
    customer.save()
    GridNode.objects.filter(pk=odd.service_point_id).update(address='1 "High" St & <x>')
    CommStatus.objects.update_or_create(
        meter=plain, defaults={"last_success": timezone.now() - timedelta(hours=5)}
    )
    loose = Meter.objects.create(
        serial="LOOSE-1", meter_model=world.meter_model, organisation=world.org_a
    )
    view = MeterListView()
    view.request = type("R", (), {"user": world.operator_a, "GET": {}})()
    view.kwargs = {}
    meters = list(
        view.get_queryset().filter(pk__in=[odd.pk, plain.pk, loose.pk]).order_by("serial")
    )
    assert len(meters) == 3
    customers = {c.service_point_id: c for c in a.customers}
    now = timezone.now()
    for meter in meters:
        meter.customer = customers.get(meter.service_point_id)
        meter.health = _meter_health(meter, now)
    template = Template(ROW_TEMPLATE)
    for selectable in (True, False):
        with django_assert_num_queries(0):  # first: the template would load what is missing
            rows = meter_rows(meters, selectable)
        expected = template.render(Context({"meters": meters, "bulk_panels": selectable}))
        assert rows == expected
        assert ("aria-label" in expected) is selectable
    assert "never" in expected and "ago" in expected and "&amp;&lt;b&gt;" in expected


def test_the_count_is_shared_per_scope_and_filter_and_the_page_says_about(
    world, settings, monkeypatch
):
    """With the roll-up cache on, the list's count (when the result does not fit on one
    page) is counted once per scope, permissions and filter for its time; a page showing a
    count from an earlier request says "about". Another organisation never gets it."""
    from django.core.cache import cache

    settings.DASHBOARD_ROLLUP_SECONDS = 15
    cache.clear()
    monkeypatch.setattr(CappedPaginator, "cap", 1000)
    for org, prefix, n in ((world.org_a, "CA", 60), (world.org_b, "CB", 70)):
        Meter.objects.bulk_create(
            Meter(serial=f"{prefix}{i:04d}", meter_model=world.meter_model, organisation=org)
            for i in range(n)
        )
    a, b = client_for(world.operator_a), client_for(world.operator_b)
    total_a = Meter.objects.filter(organisation=world.org_a).count()
    first = a.get("/meters/")
    assert first.context["paginator"].count == total_a
    assert "about" not in first.content.decode().split("</h1>")[0]
    Meter.objects.bulk_create(
        Meter(serial=f"CA9{i:03d}", meter_model=world.meter_model, organisation=world.org_a)
        for i in range(5)
    )
    again = a.get("/meters/")
    assert again.context["paginator"].count == total_a  # counted by the first request
    heading = again.content.decode().split("</h1>")[0]
    assert f"about </span>{total_a})" in heading
    # B's scope is its own count; a filter is its own count, counted now.
    total_b = Meter.objects.filter(organisation=world.org_b).count()
    assert b.get("/meters/").context["paginator"].count == total_b != total_a
    filtered = a.get("/meters/", {"q": "CA"})
    assert filtered.context["paginator"].count == 65
    assert "about" not in filtered.content.decode().split("</h1>")[0]
    # A result that fits on the first page is counted by that page, never cached.
    few = a.get("/meters/", {"q": "CA9"})
    assert few.context["paginator"].count == 5 and not few.context["paginator"].counted_at
    cache.clear()


def test_time_since_is_djangos_timesince_to_the_letter():
    """The list's memoised `time_since` says what `|timesince` says: across minutes, hours,
    days and weeks, at the 28-day edge and past it (months: Django's own), for a time in the
    future, and in another language."""
    from django.utils import translation
    from django.utils.timesince import timesince

    from meters.views import time_since

    now = datetime(2026, 3, 31, 10, 30, 15, 500000, tzinfo=UTC)
    seconds = [-90, 0, 1, 59, 60, 61, 119, 3599, 3600, 3661, 86399, 86400, 90061, 604800]
    seconds += [27 * 86400 + 86399, 28 * 86400 - 1, 28 * 86400, 29 * 86400, 400 * 86400]
    for language in ("en", "de"):
        with translation.override(language):
            for s in seconds:
                for micro in (0, 999999):
                    when = now - timedelta(seconds=s, microseconds=micro)
                    assert time_since(when, now) == timesince(when, now), (language, s, micro)
