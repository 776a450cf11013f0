"""The report engine in the staff admin (reports/admin.py): definitions and schedules change
through the engine's own operations (a version per save, the beat entry, checks, audit);
versions, runs and deliveries are history nobody edits. Scoping of every admin page and
picker is proven by the generated walks (tests/accounts/test_admin_scoping.py,
test_admin_relations.py); this file is what the admin *does*.
"""

from __future__ import annotations

import pytest
from django_celery_beat.models import PeriodicTask

from accounts.models import ActivityLog
from reports.models import ReportDefinition, ReportRun, ReportSchedule, ReportVersion
from tests.admin_forms import admin_url, change_url, page_data, staff_client
from tests.reports.engine_data import both_regions

pytestmark = pytest.mark.django_db

FIELDS = {"name": "Tamper in the admin", "description": "", "source": "tamper", "node": "",
          "meter_model": "", "customer_class": "", "grouping": "", "columns": '["serial"]',
          "quantities": "[]", "period": "last_30_days", "period_from": "", "period_to": "",
          "graph": "on"}  # fmt: skip


def test_definition_added_and_changed_through_the_engine(world):
    client = staff_client(world.admin_a)
    add = admin_url(ReportDefinition, "add")
    bad = client.post(add, {**FIELDS, "organisation": world.org_a.pk, "columns": '["colour"]'})
    assert bad.status_code == 200 and "Unknown columns: colour" in bad.content.decode()
    bad = client.post(add, {**FIELDS, "organisation": world.org_a.pk, "source": "query"})
    assert bad.status_code == 200 and "at least one quantity" in bad.content.decode()
    assert not ReportDefinition.objects.exists()

    saved = client.post(add, {**FIELDS, "organisation": world.org_a.pk})
    assert saved.status_code == 302
    definition = ReportDefinition.objects.get()
    assert (definition.version, definition.grouping) == (1, "meter")
    assert definition.versions.get().snapshot["columns"] == ["serial"]
    assert ActivityLog.objects.filter(action="create", object_id=str(definition.pk)).exists()

    page = client.get(change_url(definition))
    changed = client.post(change_url(definition), {**page_data(page), "columns": '["score"]'})
    assert changed.status_code == 302
    definition.refresh_from_db()
    assert definition.version == 2
    assert [v.snapshot["columns"] for v in definition.versions.all()] == [["score"], ["serial"]]
    update = ActivityLog.objects.get(action="update", object_id=str(definition.pk))
    assert update.changes["version"] == ["1", "2"]


def test_history_is_read_only(world):
    a, _b = both_regions(world)
    client = staff_client(world.admin_a)
    version = a.definition.versions.first()
    for obj in (version, a.run, a.delivery):
        page = client.get(change_url(obj))
        assert page.status_code == 200 and b'name="_save"' not in page.content
        assert client.post(change_url(obj), page_data(page)).status_code == 403
    assert client.get(admin_url(ReportVersion, "add")).status_code == 403
    run = ReportRun.objects.get(pk=a.run.pk)
    assert (run.status, run.error) == ("failed", "the disk is full")


def test_schedule_through_the_admin_keeps_its_beat_entry_and_staff(world):
    a, _b = both_regions(world)
    client = staff_client(world.admin_a)
    add = admin_url(ReportSchedule, "add")
    fields = {"definition": a.definition.pk, "frequency": "daily", "at": "05:15",
              "weekday": 0, "day_of_month": 1, "fmt": "csv", "enabled": "on"}  # fmt: skip
    world.operator_a.email = ""
    world.operator_a.save()
    refused = client.post(add, {**fields, "recipients": [world.operator_a.pk]})
    assert refused.status_code == 200
    assert "Not active staff of North with an e-mail address" in refused.content.decode()
    foreign = client.post(add, {**fields, "recipients": [world.admin_b.pk]})
    assert foreign.status_code == 200 and "Select a valid choice" in foreign.content.decode()
    assert ReportSchedule.objects.count() == 2  # both regions' own, nothing new

    saved = client.post(add, {**fields, "recipients": [world.admin_a.pk]})
    assert saved.status_code == 302
    schedule = ReportSchedule.objects.latest("pk")
    assert schedule.organisation == world.org_a and schedule.created_by == world.admin_a
    assert list(schedule.recipients.all()) == [world.admin_a]
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert (task.crontab.hour, task.crontab.minute, task.enabled) == ("5", "15", True)

    page = client.get(change_url(schedule))
    data = page_data(page)
    data.pop("enabled")
    assert client.post(change_url(schedule), data).status_code == 302
    task.refresh_from_db()
    assert task.enabled is False

    delete = admin_url(ReportSchedule, "delete", schedule.pk)
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()
    assert ActivityLog.objects.filter(action="delete", object_id=str(schedule.pk)).exists()


def test_deleting_a_definition_takes_its_schedules_beat_entries(world):
    a, b = both_regions(world)
    client = staff_client(world.admin_a)
    task_id = a.schedule.periodic_task_id
    # Region B's definition: 404 as if absent, nothing deleted.
    other = admin_url(ReportDefinition, "delete", b.definition.pk)
    assert client.post(other, {"post": "yes"}).status_code == 404
    delete = admin_url(ReportDefinition, "delete", a.definition.pk)
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not ReportDefinition.objects.filter(pk=a.definition.pk).exists()
    assert not PeriodicTask.objects.filter(pk=task_id).exists()
    assert ReportDefinition.objects.filter(pk=b.definition.pk).exists()
    assert PeriodicTask.objects.filter(pk=b.schedule.periodic_task_id).exists()
