"""The report engine's API (issue 16): definitions versioned, runs queued and fetched,
versions, runs and the delivery log scoped and read-only. Create/change/delete of
definitions and schedules and their scoping: the generated matrix
(tests/accounts/test_api_matrix.py)."""

from __future__ import annotations

import pytest

from reports.building import build_run
from reports.models import ReportDefinition, ReportRun, ReportVersion
from tests.api_matrix import client_for
from tests.reports.engine_data import both_regions

pytestmark = pytest.mark.django_db

URL = "/api/report-definitions/"


def test_definition_saves_versions_and_runs_through_the_api(
    fleet, media, django_capture_on_commit_callbacks
):
    analyst = client_for(fleet.readonly_a)
    payload = {"name": "Tamper API", "organisation": fleet.org_a.pk, "source": "tamper",
               "columns": ["serial", "score"], "period": "fixed",
               "period_from": "2026-05-08", "period_to": "2026-05-14"}  # fmt: skip
    bad = analyst.post(URL, {**payload, "columns": ["serial", "colour"]}, format="json")
    assert bad.status_code == 400 and "Unknown columns: colour" in str(bad.json()["columns"])
    bad = analyst.post(URL, {**payload, "source": "load", "period_to": "2026-07-14"}, format="json")
    assert bad.status_code == 400 and "at most 31 days" in str(bad.json()["period"])
    created = analyst.post(URL, payload, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    changed = analyst.patch(f"{URL}{pk}/", {"columns": ["serial"]}, format="json")
    assert changed.json()["version"] == 2
    versions = analyst.get("/api/report-versions/", {"definition": pk}).json()["results"]
    assert [(v["number"], v["snapshot"]["columns"]) for v in versions] == [
        (2, ["serial"]), (1, ["serial", "score"])
    ]  # fmt: skip

    assert analyst.post(f"{URL}{pk}/run/", {"fmt": "doc"}, format="json").status_code == 400
    with django_capture_on_commit_callbacks():
        queued = analyst.post(f"{URL}{pk}/run/", {"fmt": "csv"}, format="json")
    assert queued.status_code == 202 and queued.json()["version_number"] == 2
    run_id = queued.json()["id"]
    assert analyst.get(f"/api/report-runs/{run_id}/download/").status_code == 404  # not yet
    build_run(run_id)
    run = analyst.get(f"/api/report-runs/{run_id}/").json()
    assert (run["status"], run["rows_done"], run["first_day"]) == ("done", 2, "2026-05-08")
    body = b"".join(analyst.get(f"/api/report-runs/{run_id}/download/").streaming_content)
    assert body.decode().splitlines() == ["meter", "NA000001", "NA000002"]

    # an operator reads but may not run; region B sees none of it
    operator = client_for(fleet.operator_a)
    assert operator.post(f"{URL}{pk}/run/", {"fmt": "csv"}, format="json").status_code == 403
    other = client_for(fleet.operator_b)
    assert other.post(f"{URL}{pk}/run/", {"fmt": "csv"}, format="json").status_code == 404
    assert other.get(f"/api/report-runs/{run_id}/").status_code == 404
    assert other.get(f"/api/report-runs/{run_id}/download/").status_code == 404
    assert ReportRun.objects.count() == 1


def test_versions_runs_and_deliveries_are_scoped_and_read_only(world):
    a, b = both_regions(world)
    reader = client_for(world.operator_a)
    for url, model_a, model_b in (
        ("/api/report-versions/", a.definition.versions.first(), b.definition.versions.first()),
        ("/api/report-runs/", a.run, b.run),
        ("/api/report-deliveries/", a.delivery, b.delivery),
    ):
        listed = {row["id"] for row in reader.get(url, {"page_size": 100}).json()["results"]}
        assert model_a.pk in listed and model_b.pk not in listed, url
        assert reader.get(f"{url}{model_b.pk}/").status_code == 404, url
        assert reader.get(f"{url}{model_a.pk}/").status_code == 200, url
        assert reader.delete(f"{url}{model_a.pk}/").status_code in (403, 405), url
        assert client_for(world.customer).get(url).status_code == 403
    failed = reader.get("/api/report-deliveries/", {"status": "failed"}).json()["results"]
    assert [d["error"] for d in failed] == ["mail server: ConnectionRefusedError(111)"]
    assert ReportVersion.objects.count() == 4 and ReportDefinition.objects.count() == 2


def test_schedule_recipients_are_staff_of_the_organisation(world):
    a, b = both_regions(world)
    admin = client_for(world.admin_a)
    payload = {"definition": a.definition.pk, "frequency": "monthly", "at": "06:00",
               "day_of_month": 1, "fmt": "xlsx", "recipients": [world.operator_a.pk]}  # fmt: skip
    # a user of another organisation is "not found" (out of scope) ...
    refused = admin.post("/api/report-schedules/", {**payload, "recipients": [world.operator_b.pk]},
                         format="json")  # fmt: skip
    assert refused.status_code == 400
    # ... and a user of the parent organisation, visible to a utility administrator, is
    # refused by name
    top = client_for(world.superuser)
    utility_staff = world.superuser
    refused = top.post("/api/report-schedules/", {**payload, "recipients": [utility_staff.pk]},
                       format="json")  # fmt: skip
    assert refused.status_code == 400 and "Not staff of North" in str(refused.json())
    created = admin.post("/api/report-schedules/", payload, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["organisation"] == world.org_a.pk
    bad_day = admin.patch(f"/api/report-schedules/{created.json()['id']}/",
                          {"day_of_month": 31}, format="json")  # fmt: skip
    assert bad_day.status_code == 400
