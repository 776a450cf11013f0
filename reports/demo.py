"""The reports' part of the demo utility (meters/demo.py, settings.AMI_DEMO_PARTS).

Each region gets the built-in report definitions (one per built-in report, as an analyst
would add them from the Reports page); the North region also gets two reports of its own:
the tamper report below its first feeder (saved twice, so its page shows two versions) and
the billing determinants' quality per meter, mailed every Monday at 07:00 (the utility's
time) to the North operator and analyst. The demo's mail goes to the console
(EMAIL_URL=consolemail://), so `make run` shows the message in the worker's output.

File exchange: the North region has a folder target (`var/exchange/north-mdm/`, run as the
North engineer) exporting MeterReadings, EndDeviceEvents and MeterConfig daily at 00:30;
yesterday's files are written at once, and two MeterConfig files are dropped into its
incoming/ and imported: North's own master data (accepted, nothing changes) and a file
naming a South meter (rejected whole, with its report), so /reports/exchange/ shows each
kind of row.
"""

from __future__ import annotations

import os
import time as clock
from datetime import time

from meters.choices import NodeKind
from meters.models import GridNode, Meter

from . import actions
from .exchange import export, folders, importer, meterconfig
from .models import ExchangeTarget, ReportDefinition, ReportSchedule


def load_demo_reports(demo) -> None:
    for code, org in demo.regions.items():
        analyst = demo.users.get(f"{code}-analyst") or demo.users["admin"]
        actions.seed_builtins(org, analyst)
    north = demo.regions["north"]
    analyst = demo.users["north-analyst"]
    feeder = GridNode.objects.filter(organisation=north, kind=NodeKind.FEEDER).order_by("path")
    tamper = ReportDefinition(
        organisation=north, name="Suspicious meters, first feeder", source="tamper",
        node=feeder.first(), period="last_7_days",
        description="The tamper report below one feeder, the last seven days.",
    )  # fmt: skip
    actions.save_definition(tamper, analyst)
    tamper.columns = ["serial", "point", "score", "tamper_events", "unreachable", "flags"]
    actions.save_definition(tamper, analyst)
    quality = ReportDefinition(
        organisation=north, name="Billing quality per meter", source="billing",
        grouping="meter", period="last_month",
        description="Estimated and missing shares of last month's billing reads, per meter.",
    )  # fmt: skip
    actions.save_definition(quality, analyst)
    recipients = [demo.users["north-operator"], analyst]
    for user in recipients:
        user.email = user.email or f"{user.username}@example.invalid"
        user.save(update_fields=["email"])
    actions.save_schedule(
        ReportSchedule(definition=quality, frequency="weekly", weekday=0, at=time(7, 0),
                       fmt="xlsx"),
        analyst,
        recipients,
    )  # fmt: skip
    load_demo_exchange(demo)


def load_demo_exchange(demo) -> None:
    north = demo.regions["north"]
    target = actions.save_target(
        ExchangeTarget(organisation=north, name="North MDM drop", folder="north-mdm",
                       run_as=demo.users["north-engineer"], at=time(0, 30), export_config=True)
    )  # fmt: skip
    day = export.yesterday()
    for document in export.documents(target):
        export.export_slot(target, document, day, force=True)
    incoming = folders.base(target) / "incoming"
    own = folders.base(target) / "outgoing" / export.filename(target, "MeterConfig", day)
    (incoming / "north-master-data.xml").write_bytes(own.read_bytes())
    south = Meter.objects.filter(organisation=demo.regions["south"]).order_by("serial").first()
    model = south.meter_model
    (incoming / "south-meter-by-mistake.xml").write_text(
        meterconfig.HEADER
        + f"  <Meter><serialNumber>{south.serial}</serialNumber><EndDeviceInfo><AssetModel>"
        f"<modelNumber>{model.name}</modelNumber><Manufacturer><Names><name>"
        f"{model.manufacturer}</name></Names></Manufacturer></AssetModel></EndDeviceInfo>"
        "</Meter>\n" + meterconfig.FOOTER
    )
    settled = clock.time() - 3600
    for path in incoming.iterdir():
        os.utime(path, (settled, settled))
    importer.scan(target)
