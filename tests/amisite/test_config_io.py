"""Moving configuration between systems: export_config / import_config (amisite/config_io.py).

A real move goes from this suite's PostgreSQL database to a second, empty system (a SQLite
database migrated by its own process); the other cases check that an import is idempotent,
all or nothing, names every problem, never writes into another organisation's catalogue,
and that a dry run writes nothing.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import ActivityLog, Organisation
from amisite.config_io import ConfigError, export_configuration, import_configuration, read_document
from collection.models import ReadJob
from meters.alarms.models import AlarmRule
from meters.models import Channel, GridNode, MeterModel
from tests.manage_shell import manage_shell

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def configured(world):
    own = MeterModel.objects.create(manufacturer="North", name="N1", organisation=world.org_a)
    Channel.objects.create(
        meter_model=own, obis="1-0:1.8.0*255", name="import", unit="Wh", kind="register"
    )
    job = ReadJob.objects.create(
        name="nightly", organisation=world.org_a, items=["registers"], crontab="15 1 * * *",
        grid_node=world.grid_a.feeder, batch_size=50,
    )  # fmt: skip
    job.meters.set(world.grid_a.meters[:1])
    AlarmRule.objects.create(
        name="tamper north", organisation=world.org_a, kinds=["cover_open", "magnetic_tamper"],
        grid_node=world.grid_a.substation, meter_model=own,
    )  # fmt: skip
    return world


def counts(org) -> dict:
    return {
        "grid": GridNode.objects.filter(organisation=org).count(),
        "jobs": ReadJob.objects.filter(organisation=org).count(),
        "rules": AlarmRule.objects.filter(organisation=org).count(),
        "models": MeterModel.objects.count(),
        "channels": Channel.objects.count(),
    }


def test_export_has_keys_not_ids_and_no_other_organisation(configured):
    document = export_configuration(configured.org_a)
    text = json.dumps(document)
    assert "SB-" not in text and "South" not in text  # B's grid never appears
    codes = [row["code"] for row in document["sections"]["grid"]]
    assert codes[0] == "NA-R" and "NA-T1" in codes  # parents before children
    transformer = next(r for r in document["sections"]["grid"] if r["code"] == "NA-T1")
    assert transformer["parent"] == ["NA-F1"]
    models = {(m["manufacturer"], m["name"]) for m in document["sections"]["meter_models"]}
    assert models == {("Acme", "AM550"), ("North", "N1")}  # its own and the shared one it uses
    (job,) = document["sections"]["read_jobs"]
    assert job["grid_node"] == ["NA-F1"] and job["meters"] == ["NA000001"]
    assert "id" not in job and "periodic_task" not in job
    (rule,) = document["sections"]["alarm_rules"]
    assert rule["meter_model"] == ["North", "N1"]


def test_reimporting_the_own_export_changes_nothing(configured):
    document = export_configuration(configured.org_a)
    before = counts(configured.org_a)
    report = import_configuration(copy.deepcopy(document), configured.org_a)
    assert counts(configured.org_a) == before
    assert sum(report.created.values()) == 0 and sum(report.updated.values()) == 0


def test_changes_are_applied_and_a_new_job_gets_its_schedule(configured):
    document = export_configuration(configured.org_a)
    sections = document["sections"]
    sections["read_jobs"][0]["batch_size"] = 75
    sections["read_jobs"].append(
        dict(sections["read_jobs"][0], name="hourly", crontab="5 * * * *", meters=[])
    )
    sections["grid"].append(
        {"code": "NA-SP9", "kind": "service_point", "name": "Service point 9",
         "parent": ["NA-T1"], "address": "9 NA Street"}
    )  # fmt: skip
    report = import_configuration(document, configured.org_a, user=configured.admin_a)
    assert report.created == {
        "grid": 1, "meter_models": 0, "channels": 0, "read_jobs": 1, "alarm_rules": 0,
    }  # fmt: skip
    assert report.updated["read_jobs"] == 1
    assert ReadJob.objects.get(name="nightly", organisation=configured.org_a).batch_size == 75
    hourly = ReadJob.objects.get(name="hourly", organisation=configured.org_a)
    assert hourly.periodic_task is not None and hourly.periodic_task.crontab.hour == "*"
    node = GridNode.objects.get(code="NA-SP9", organisation=configured.org_a)
    assert node.parent.code == "NA-T1" and node.path.startswith(configured.grid_a.transformer.path)
    assert ActivityLog.objects.filter(action="configuration_imported").count() == 1


def test_every_problem_is_named_and_nothing_is_written(configured):
    document = export_configuration(configured.org_a)
    sections = document["sections"]
    sections["read_jobs"][0]["batch_size"] = "many"
    sections["read_jobs"][0]["grid_node"] = ["NA-NOWHERE"]
    sections["alarm_rules"][0]["colour"] = "red"
    sections["grid"].append({"code": "NA-X", "kind": "transformer", "name": "X"})  # no feeder
    sections["read_jobs"].append(dict(sections["read_jobs"][0], name="x", meters=["ZZ999"]))
    before = counts(configured.org_a)
    with pytest.raises(ConfigError) as caught:
        import_configuration(document, configured.org_a)
    text = "\n".join(caught.value.problems)
    assert "read_jobs row 1, batch_size" in text
    assert "NA-NOWHERE" in text
    assert "alarm_rules row 1: unknown fields colour" in text
    assert "grid row 7 (NA-X): parent: A distribution transformer goes below a feeder" in text
    assert counts(configured.org_a) == before


def test_another_organisations_catalogue_is_referred_to_never_changed(configured):
    document = export_configuration(configured.org_a)
    shared = next(m for m in document["sections"]["meter_models"] if m["manufacturer"] == "Acme")
    shared["description"] = "rewritten by North"
    import_configuration(document, configured.org_a)
    assert MeterModel.objects.get(manufacturer="Acme").description != "rewritten by North"


def test_dry_run_and_bad_files(configured, tmp_path):
    document = export_configuration(configured.org_a)
    document["sections"]["read_jobs"][0]["name"] = "renamed"
    before = counts(configured.org_a)
    report = import_configuration(document, configured.org_a, dry_run=True)
    assert report.created["read_jobs"] == 1 and counts(configured.org_a) == before
    for text in (b"{not json", b'{"format": "something-else"}', b"\xff\xfe"):
        with pytest.raises(ConfigError):
            read_document(text)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "ami-configuration", "version": 1, "sections": []}))
    with pytest.raises(CommandError, match="nothing imported|sections"):
        call_command("import_config", str(bad), organisation="north")


@pytest.mark.slow
def test_a_configuration_moves_to_an_empty_system(configured, tmp_path):
    exported = tmp_path / "north.json"
    call_command("export_config", organisation="north", output=str(exported))
    target = {"DATABASE_URL": f"sqlite:///{tmp_path / 'other.sqlite3'}"}
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT, env=os.environ | target, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    manage_shell(
        "from accounts.models import Organisation; "
        "Organisation.objects.create(name='North', code='north')",
        **target,
    )
    document = json.loads(exported.read_text())
    document["sections"]["read_jobs"][0]["meters"] = []  # the registry moves separately
    exported.write_text(json.dumps(document))
    out = manage_shell(
        "from django.core.management import call_command; "
        f"call_command('import_config', {str(exported)!r}, organisation='north')\n"
        "from meters.models import GridNode, MeterModel, Channel\n"
        "from collection.models import ReadJob\n"
        "from meters.alarms.models import AlarmRule\n"
        "job = ReadJob.objects.get()\n"
        "print(GridNode.objects.count(), MeterModel.objects.count(), Channel.objects.count(),"
        " job.name, job.periodic_task.enabled, AlarmRule.objects.get().grid_node.code)",
        **target,
    )
    grid = GridNode.objects.filter(organisation=configured.org_a).count()
    channels = Channel.objects.filter(
        meter_model__in=MeterModel.objects.filter(manufacturer__in=["Acme", "North"])
    ).count()
    assert out.splitlines()[-1] == f"{grid} 2 {channels} nightly True NA-S1"
    assert Organisation.objects.filter(code="north").count() == 1
