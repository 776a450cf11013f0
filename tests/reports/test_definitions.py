"""Report definitions (issue 16, Engine): versions, runs of a version, scope, pages.

The figures are the tamper report's (tests/reports/test_tamper.py, 8-14 May 2026, fixed
days): NA000001 scores 8, NA000002 7, region B's SB000001 has a tamper event too and is
never in region A's rows.
"""

from __future__ import annotations

import csv
import os
from datetime import date
from xml.etree import ElementTree

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from openpyxl import load_workbook
from pypdf import PdfReader

from reports import actions, engine
from reports.building import build_run, run_path
from reports.models import ExportStatus, ReportDefinition, ReportRun, ReportVersion

pytestmark = pytest.mark.django_db

MAY = {"period": "fixed", "period_from": date(2026, 5, 8), "period_to": date(2026, 5, 14)}


def define(world, org=None, user=None, **fields) -> ReportDefinition:
    values = {"name": "Suspicious meters", "source": "tamper", **MAY, **fields}
    definition = ReportDefinition(organisation=org or world.org_a, **values)
    actions.save_definition(definition, user or world.readonly_a)
    return definition


def run_now(definition, user, fmt="csv") -> ReportRun:
    run = ReportRun.objects.create(
        definition=definition, version=actions.current_version(definition),
        organisation=definition.organisation, requested_by=user, fmt=fmt,
    )  # fmt: skip
    build_run(run.pk)
    run.refresh_from_db()
    return run


def csv_rows(run) -> list[dict]:
    with open(run_path(run), encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_save_is_a_version_and_a_run_records_its_version(fleet, media):
    definition = define(fleet, columns=["serial", "score"])
    first = run_now(definition, fleet.operator_a)
    definition.columns = ["serial", "score", "tamper_events"]
    definition.name = "Suspicious meters, with events"
    actions.save_definition(definition, fleet.readonly_a)
    second = run_now(definition, fleet.operator_a)

    assert definition.version == 2
    assert list(definition.versions.values_list("number", flat=True)) == [2, 1]
    assert (first.version.number, second.version.number) == (1, 2)
    # the first version still says what it said: a re-run of it gives its columns
    assert first.version.snapshot["columns"] == ["serial", "score"]
    assert list(csv_rows(first)[0]) == ["meter", "score"]
    assert list(csv_rows(second)[0]) == ["meter", "score", "tamper_events"]
    assert [(r["meter"], r["score"]) for r in csv_rows(second)] == [
        ("NA000001", "8"), ("NA000002", "7")
    ]  # fmt: skip
    assert (second.first_day, second.last_day, second.rows_done) == (
        date(2026, 5, 8), date(2026, 5, 14), 2
    )  # fmt: skip


def test_a_run_sees_only_the_definitions_organisation(fleet, media):
    """Run by the superuser (who sees everything), region A's definition still gives region
    A's meters only; region B's definition, region B's."""
    a = run_now(define(fleet), fleet.superuser)
    b = run_now(define(fleet, org=fleet.org_b, user=fleet.superuser), fleet.superuser)
    assert [r["meter"] for r in csv_rows(a)] == ["NA000001", "NA000002"]
    assert [r["meter"] for r in csv_rows(b)] == ["SB000001", "SB000002"]
    # and a user of A running B's definition gets nothing of B: the run fails, saying why
    c = run_now(ReportDefinition.objects.get(organisation=fleet.org_b), fleet.operator_a)
    assert c.status == ExportStatus.FAILED and "may no longer see" in c.error
    assert not c.file


def test_filters_narrow_and_never_widen(fleet, media):
    m2 = fleet.grid_a.meters[1]
    m2.service_point.customers.update(tariff_code="BUSINESS")
    run = run_now(define(fleet, customer_class="BUSINESS"), fleet.operator_a)
    assert [r["meter"] for r in csv_rows(run)] == ["NA000002"]
    run = run_now(define(fleet, node=fleet.grid_a.transformer), fleet.operator_a)
    assert [r["meter"] for r in csv_rows(run)] == ["NA000001", "NA000002"]
    # a node the runner cannot see fails the run instead of reporting everything
    stranger = define(fleet, node=fleet.grid_a.transformer)
    version = actions.current_version(stranger)
    version.snapshot["node"] = fleet.grid_b.transformer.pk
    version.save()
    run = run_now(stranger, fleet.operator_a)
    assert run.status == ExportStatus.FAILED and "not in scope any more" in run.error


def test_every_format_through_the_exporters(fleet, media):
    definition = define(fleet, columns=["serial", "score", "flags"])
    xlsx = run_now(definition, fleet.operator_a, "xlsx")
    sheet = load_workbook(run_path(xlsx), read_only=True).active
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells == [["meter", "score", "flags"], ["NA000001", 8, cells[1][2]],
                     ["NA000002", 7, cells[2][2]]]  # fmt: skip
    pdf = run_now(definition, fleet.operator_a, "pdf")
    text = " ".join(p.extract_text() for p in PdfReader(run_path(pdf)).pages)
    assert "NA000002" in text and "Suspicious meters" in text
    xml = run_now(definition, fleet.operator_a, "xml")
    root = ElementTree.parse(run_path(xml)).getroot()
    assert (root.get("source"), root.get("version"), root.get("first_day")) == (
        "tamper", "1", "2026-05-08"
    )  # fmt: skip
    rows = [{c.get("key"): c.text for c in row} for row in root.iter("row")]
    assert [(r["serial"], r["score"]) for r in rows] == [("NA000001", "8"), ("NA000002", "7")]
    assert not [name for name in os.listdir(os.path.join(media, "report-runs"))
                if name.endswith(".part")]  # fmt: skip


def test_billing_a_row_per_register_as_a_definition(fleet, media, client):
    """The billing source by register (the demo's built-in one): shown and run, region A's."""
    definition = define(fleet, source="billing", grouping="register",
                        columns=["serial", "obis", "consumption"])  # fmt: skip
    run = run_now(definition, fleet.operator_a)
    assert run.status == ExportStatus.DONE, run.error
    rows = csv_rows(run)
    assert {r["meter"] for r in rows} == {"NA000001", "NA000002"}
    assert list(rows[0]) == ["meter", "register", "consumption"] and len(rows) > 2
    client.force_login(fleet.operator_a)
    shown = client.get(reverse("reports:definition-show", args=[definition.pk]))
    assert shown.status_code == 200 and "NA000001" in shown.content.decode()


def test_customer_patterns_as_a_definition(fleet, media):
    """h16's customer patterns through the engine: region A's customer meters, by serial."""
    definition = define(fleet, source="patterns", grouping="serial",
                        columns=["serial", "customer_class", "energy"])  # fmt: skip
    run = run_now(definition, fleet.operator_a)
    assert run.status == ExportStatus.DONE, run.error
    rows = csv_rows(run)
    assert [r["meter"] for r in rows] == ["NA000001", "NA000002"]
    assert list(rows[0]) == ["meter", "customer_class", "energy_wh"]


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"source": "nonsense"}, "source", "Unknown report"),
        ({"source": "balance", "meter_model": 1}, "meter_model", "cannot be filtered"),
        ({"grouping": "week"}, "grouping", "grouped by one of"),
        ({"columns": ["serial", "colour"]}, "columns", "Unknown columns: colour"),
        ({"period_to": None}, "period", "first and last day"),
        ({"source": "load", "period_to": date(2026, 6, 30)}, "period", "at most 31 days"),
    ],
)
def test_bad_settings_are_named(fields, field, words):
    problems = engine.problems({"source": "tamper", **MAY, **fields})
    assert words in problems[field]


def test_periods_in_the_utilitys_days():
    today = date(2026, 3, 1)
    assert engine.resolve_period("last_month", None, None, today).first == date(2026, 2, 1)
    assert engine.resolve_period("last_month", None, None, today).last == date(2026, 2, 28)
    assert engine.resolve_period("yesterday", None, None, today).first == date(2026, 2, 28)
    week = engine.resolve_period("last_7_days", None, None, today)
    assert (week.first, week.last) == (date(2026, 2, 22), date(2026, 2, 28))
    assert engine.resolve_period("this_month", None, None, today).last == today


def test_builtins_seeded_on_demand_once(world):
    made = actions.seed_builtins(world.org_a, world.readonly_a)
    assert sorted(d.builtin for d in made) == sorted(engine.SOURCES)
    assert actions.seed_builtins(world.org_a, world.readonly_a) == []
    for definition in made:  # each a valid first version
        assert definition.version == 1
        assert not engine.problems(
            {**actions.current_version(definition).snapshot, "period_from": None}
        )


# ------------------------------------------------------------------ pages


def client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_analyst_creates_edits_and_runs_in_the_ui(fleet, media, django_capture_on_commit_callbacks):
    analyst = client(fleet.readonly_a)
    form = {"name": "Tamper north", "organisation": fleet.org_a.pk, "source": "tamper",
            "grouping": "", "columns": "serial, score", "period": "fixed",
            "period_from": "2026-05-08", "period_to": "2026-05-14", "graph": "on"}  # fmt: skip
    bad = analyst.post(reverse("reports:definition-new"), {**form, "columns": "serial, colour"})
    assert bad.status_code == 200 and b"Unknown columns: colour" in bad.content
    assert not ReportDefinition.objects.exists()
    response = analyst.post(reverse("reports:definition-new"), form)
    definition = ReportDefinition.objects.get()
    assert response.status_code == 302 and definition.version == 1
    edit = reverse("reports:definition-edit", args=[definition.pk])
    analyst.post(edit, {**form, "columns": "serial, score, flags"})
    definition.refresh_from_db()
    assert definition.version == 2

    v1, v2 = (ReportVersion.objects.get(definition=definition, number=n) for n in (1, 2))
    page = analyst.get(reverse("reports:version", args=[v2.pk])).content.decode()
    assert "serial, score, flags" in page and "changed" in page
    shown = analyst.get(reverse("reports:definition-show", args=[definition.pk]))
    text = shown.content.decode()
    assert "NA000001" in text and "SB000001" not in text and "<svg" in text

    with django_capture_on_commit_callbacks() as queued:
        response = analyst.post(
            reverse("reports:definition-run", args=[definition.pk]), {"fmt": "csv"}
        )
    run = ReportRun.objects.get()
    assert len(queued) == 1 and run.status == "queued"
    build_run(run.pk)  # what the queued task does (tests/reports/test_schedules.py: a worker)
    assert response.url == reverse("reports:run", args=[run.pk])
    status = analyst.get(reverse("reports:run-status", args=[run.pk])).json()
    assert status["status"] == "done" and status["rows_done"] == 2
    download = analyst.get(reverse("reports:run-download", args=[run.pk]))
    body = b"".join(download.streaming_content).decode()
    assert body.splitlines()[0] == "meter,score,flags" and run.version == v2
    detail = analyst.get(reverse("reports:definition", args=[definition.pk])).content.decode()
    assert "v2" in detail and f"v{v1.number}" in detail
    bad_format = analyst.post(
        reverse("reports:definition-run", args=[definition.pk]), {"fmt": "doc"}
    )
    assert bad_format.status_code == 302 and ReportRun.objects.count() == 1


def test_other_region_gets_404_everywhere(fleet, media):
    definition = define(fleet)
    run = run_now(definition, fleet.operator_a)
    other = client(fleet.operator_b)
    for name, pk in (("definition", definition.pk), ("definition-show", definition.pk),
                     ("definition-edit", definition.pk), ("schedule-new", definition.pk),
                     ("version", actions.current_version(definition).pk), ("run", run.pk),
                     ("run-status", run.pk), ("run-download", run.pk)):  # fmt: skip
        assert other.get(reverse(f"reports:{name}", args=[pk])).status_code in (403, 404), name
    assert other.post(reverse("reports:definition-run", args=[definition.pk]),
                      {"fmt": "csv"}).status_code == 404  # fmt: skip
    listed = other.get(reverse("reports:definitions")).content.decode()
    assert "Suspicious meters" not in listed


def test_operator_reads_but_cannot_define(fleet):
    definition = define(fleet)
    operator = client(fleet.operator_a)
    assert operator.get(reverse("reports:definition", args=[definition.pk])).status_code == 200
    assert operator.get(reverse("reports:definition-new")).status_code == 403
    assert (
        operator.post(reverse("reports:definition-delete", args=[definition.pk])).status_code == 403
    )
    assert ReportDefinition.objects.filter(pk=definition.pk).exists()


def test_delete_asks_first_then_takes_everything(fleet, media):
    definition = define(fleet)
    run_now(definition, fleet.operator_a)
    admin = client(fleet.admin_a)
    url = reverse("reports:definition-delete", args=[definition.pk])
    assert b"Delete report" in admin.get(url).content
    assert ReportDefinition.objects.filter(pk=definition.pk).exists()
    assert admin.post(url).status_code == 302
    assert not ReportDefinition.objects.exists() and not ReportRun.objects.exists()
    assert settings.MEDIA_ROOT  # the files stay on disk for the media clean-up


def test_demo_has_reports_and_a_schedule(media):
    """`make run`'s data: each region's built-ins, North's two own reports (one with two
    versions) and a weekly schedule with its beat entry; the North analyst runs one."""
    from meters.demo import load_demo

    demo = load_demo()
    north = demo.regions["north"]
    analyst = demo.users["north-analyst"]
    assert ReportDefinition.objects.filter(organisation=north).exclude(builtin="").count() == len(
        engine.SOURCES
    )
    tamper = ReportDefinition.objects.get(name="Suspicious meters, first feeder")
    assert tamper.version == 2 and tamper.node.kind == "feeder"
    schedule = ReportDefinition.objects.get(name="Billing quality per meter").schedules.get()
    assert schedule.periodic_task.enabled and schedule.periodic_task.crontab.day_of_week == "1"
    assert sorted(u.username for u in schedule.recipients.all()) == [
        "north-analyst", "north-operator"
    ]  # fmt: skip
    south = Client()
    south.force_login(demo.users["south-operator"])
    assert "Suspicious meters" not in south.get(reverse("reports:definitions")).content.decode()
    run = run_now(tamper, analyst)
    assert run.status == ExportStatus.DONE, run.error


# ------------------------------------------------------------------ the data query as a source


@pytest.fixture
def readings(world, settings):
    """Both regions' meters with three days of 15-minute import/export from the simulator's
    model (tests/meters/_data.py), as the data query page's tests have them."""
    from tests.meters._data import ingest_days

    settings.TIME_ZONE = "UTC"
    for meter in world.grid_a.meters + world.grid_b.meters:
        ingest_days(meter)
    return world


def test_data_query_as_a_definition(readings, media):
    """The page's query (export per day on 2 June) saved, versioned and run into a file:
    each of region A's meters' day is the sum of its 96 intervals; region B never appears."""
    from decimal import Decimal

    from tests.meters._data import EXPORT, IMPORT, expected

    day = date(2026, 6, 2)
    definition = define(readings, source="query", quantities=[EXPORT], grouping="day",
                        period="fixed", period_from=day, period_to=day)  # fmt: skip
    run = run_now(definition, readings.operator_a)
    assert run.status == ExportStatus.DONE, run.error
    rows = csv_rows(run)
    assert list(rows[0]) == ["meter", "obis", "quantity", "time", "value", "unit", "quality",
                             "count"]  # fmt: skip
    assert [r["meter"] for r in rows] == [m.serial for m in readings.grid_a.meters]
    for meter, row in zip(readings.grid_a.meters, rows, strict=True):
        want = sum(Decimal(expected(meter.serial, 2, 96 + i)) for i in range(96))
        assert (row["obis"], Decimal(row["value"]), row["count"]) == (EXPORT, want, "96")
        assert row["time"].startswith("2026-06-02T00:00:00")
    assert run.first_day == run.last_day == day

    # A new version with raw intervals of both quantities: 2 meters x 2 x 96 rows; the
    # first version's run keeps its own settings.
    definition.quantities, definition.grouping = [IMPORT, EXPORT], "raw"
    actions.save_definition(definition, readings.readonly_a)
    raw = run_now(definition, readings.operator_a, fmt="xlsx")
    assert raw.status == ExportStatus.DONE and raw.rows_done == 2 * 2 * 96
    assert run.version.snapshot["quantities"] == [EXPORT]
    sheet = load_workbook(run_path(raw), read_only=True).worksheets[0]
    serials = {r[0] for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert serials == {m.serial for m in readings.grid_a.meters}
    # Filtered to one grid node: the meters below it only.
    node = readings.grid_a.meters[0].service_point
    definition.node = node
    actions.save_definition(definition, readings.readonly_a)
    narrowed = csv_rows(run_now(definition, readings.operator_a))
    assert {r["meter"] for r in narrowed} == {readings.grid_a.meters[0].serial}


def test_data_query_run_needs_the_query_permission(readings, media):
    """A vending clerk of the region (meters in scope, no data query) cannot run it."""
    from accounts import roles
    from tests.factories import make_user
    from tests.meters._data import EXPORT

    definition = define(readings, source="query", quantities=[EXPORT], grouping="day",
                        period="fixed", period_from=date(2026, 6, 2),
                        period_to=date(2026, 6, 2))  # fmt: skip
    assert "query" in dict(engine.source_choices(readings.operator_a))
    clerk = make_user("clerk-a", readings.org_a, roles.VENDING_CLERK)
    assert "query" not in dict(engine.source_choices(clerk))
    snapshot = actions.current_version(definition).snapshot
    with pytest.raises(ValueError, match="you may not see the figures of Data query"):
        engine.spec_of(engine.within(clerk, readings.org_a), snapshot)
    run = run_now(definition, clerk)
    assert run.status == ExportStatus.FAILED and not run.file


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"source": "query"}, "at least one quantity"),
        ({"source": "query", "quantities": ["1-0:1.8.0*255", "watts"]}, "Not OBIS codes: watts"),
        ({"source": "query", "quantities": "1-0:1.8.0*255"}, "A list of OBIS codes"),
        ({"quantities": ["1-0:1.8.0*255"]}, "takes no quantities"),
    ],
)
def test_bad_quantities_are_named(fields, words):
    problems = engine.problems({"source": "tamper", **MAY, "grouping": "", **fields})
    assert words in problems["quantities"]


def test_data_query_period_is_bounded():
    problems = engine.problems({"source": "query", "quantities": ["1-0:1.8.0*255"],
                                "period": "fixed", "period_from": date(2025, 5, 31),
                                "period_to": date(2026, 6, 1)})  # fmt: skip
    assert "at most 366 days" in problems["period"]


def test_data_query_definition_in_the_form_and_the_api(readings):
    """The analyst's form takes the quantities as text, the API as a list; both refuse a
    data query without them with the field named."""
    from tests.meters._data import EXPORT

    analyst = client(readings.readonly_a)
    # "Save as a report" on the query page carries the query into a new definition's form.
    query = {"channels": [EXPORT], "start": "2026-06-02", "end": "2026-06-03",
             "resolution": "hour"}  # fmt: skip
    page = analyst.get(reverse("reports:query"), query)
    save_as = page.context["save_as"]
    assert save_as.startswith(reverse("reports:definition-new") + "?source=query&")
    new = analyst.get(save_as).context["form"]
    assert (new["source"].value(), new["grouping"].value()) == ("query", "hour")
    assert (new["quantities"].value(), new["period"].value()) == (EXPORT, "fixed")
    assert str(new["period_to"].value()) == "2026-06-03"
    form = {"name": "Export per day", "organisation": readings.org_a.pk, "source": "query",
            "grouping": "day", "columns": "", "quantities": "", "period": "yesterday",
            "graph": "on"}  # fmt: skip
    refused = analyst.post(reverse("reports:definition-new"), form)
    assert refused.status_code == 200 and "at least one quantity" in refused.content.decode()
    saved = analyst.post(reverse("reports:definition-new"), {**form, "quantities": EXPORT})
    assert saved.status_code == 302
    definition = ReportDefinition.objects.get(name="Export per day")
    assert definition.quantities == [EXPORT]
    page = analyst.get(reverse("reports:definition", args=[definition.pk])).content.decode()
    assert EXPORT in page
    payload = {"name": "Export per day (API)", "organisation": readings.org_a.pk,
               "source": "query", "grouping": "day", "period": "yesterday"}  # fmt: skip
    for quantities, words in (([], "at least one quantity"), (["x"], "Not OBIS codes: x")):
        api = analyst.post("/api/report-definitions/", {**payload, "quantities": quantities},
                           content_type="application/json")  # fmt: skip
        assert api.status_code == 400 and words in str(api.json()["quantities"])
    api = analyst.post("/api/report-definitions/", {**payload, "quantities": [EXPORT]},
                       content_type="application/json")  # fmt: skip
    assert api.status_code == 201 and api.json()["quantities"] == [EXPORT]
