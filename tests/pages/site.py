"""Every page of the dashboard, generated from the URL patterns, with data to show.

`pages(data)` walks the root URL configuration (API and admin have their own tests) and
yields one URL per HTML page: a pattern without arguments is visited as is; a pattern with
arguments needs a case in `cases()`; a pattern that is not an HTML page (JSON, files,
POST-only actions) is named in `NOT_PAGES` with the reason. A pattern in none of these fails
`test_every_pattern_has_a_case`, so a new page cannot escape the page tests.

The customer portal's pages are a customer's, not the superuser's (staff get a 403 there):
`CUSTOMER_PAGES` names them and `customer_pages(data)` gives their URLs, visited as the
world's customer (`world.customer`, region A's first customer, who holds `data.sale`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from portal.customers import month_start

SKIPPED_PREFIXES = ("admin/", "api/")  # own tests: tests/accounts, tests/pages/test_api_root

NOT_PAGES = {
    "meters:meter-export": "a file download",
    "meters:map-data": "JSON for the map",
    "meters:grid-children": "JSON for the grid tree",
    "meters:alarm-transition": "POST only",
    "collection:read-meter": "POST only",
    "collection:job-run": "POST only",
    "collection:job-reread": "POST only",
    "vending:counter-action": "POST only",
    "loadcontrol:command-meter": "POST only (confirm page: tests/loadcontrol)",
    "loadcontrol:bulk-new": "POST only (confirm page: tests/loadcontrol/test_bulk_pages.py)",
    "loadcontrol:bulk-decide": "POST only",
    "loadcontrol:schedule-decide": "POST only",
    "vending:sale-action": "POST only",
    "vending:management-token": "POST only",
    "vending:receipt": "a PDF or text file",
    "reports:query-graph": "JSON for the graph",
    "reports:query-export": "a file download (POST)",
    "reports:export-status": "JSON for the export page",
    "reports:export-download": "a file download",
    "reports:definition-run": "POST only",
    "reports:definition-seed": "POST only",
    "reports:run-status": "JSON for the run page",
    "reports:run-download": "a file download",
    "reports:events-cim": "an XML file (tests/reports/test_cim_events.py)",
    "logout": "POST only",
    "healthz": "JSON for load balancers",
    "readyz": "JSON for load balancers",
    "metrics": "Prometheus text for a scraper (tests/amisite/test_observability.py)",
    "favicon": "a redirect to the icon",
    "portal:usage-csv": "a file download",
    "portal:receipt-pdf": "a PDF file",
    "portal:bill-pdf": "a PDF file",
    "portal:manifest": "the web app manifest (JSON)",
    "portal:service-worker": "the service worker's script",
    "portal:pay-webhook": "POST only: the payment providers' notifications",
    "portal:verify": "a redirect unless a second factor is pending (tests/portal/test_accounts.py)",
}
# Pages only a customer sees (see the module's docstring).
CUSTOMER_PAGES = {
    "portal:home",
    "portal:usage",
    "portal:purchases",
    "portal:purchase",
    "portal:account",
    "portal:password",
    "portal:two-factor",
    "portal:bills",
    "portal:bill",
    "portal:pay",
    "portal:payment",
    "portal:pay-sandbox",
    "portal:outages",
}


@dataclass
class PageData:
    world: object
    meters: dict
    run_partial: object
    run_on_demand: object
    job: object
    export: object
    sale: object
    account: object
    bulk: object = None
    schedule: object = None
    payment: object = None
    reports: object = None  # tests/reports/engine_data.py ReportRows


def url_names() -> list[tuple[str, str, bool]]:
    """(name, route, takes arguments) of every named pattern outside admin and API."""
    found = []

    def walk(resolver, prefix, namespace):
        for p in resolver.url_patterns:
            if isinstance(p, URLResolver):
                ns = p.namespace
                full = f"{namespace}:{ns}" if namespace and ns else (ns or namespace)
                walk(p, prefix + str(p.pattern), full)
            elif isinstance(p, URLPattern) and p.name:
                route = prefix + str(p.pattern)
                if route.startswith(SKIPPED_PREFIXES):
                    continue
                name = f"{namespace}:{p.name}" if namespace else p.name
                found.append((name, route, bool(p.pattern.regex.groupindex)))

    walk(get_resolver(), "", None)
    return found


def cases(data: PageData) -> dict[str, list[str]]:
    """URLs of the pages that take arguments (and variants worth a look)."""
    from tests.meters._data import EXPORT, IMPORT, T0
    from tests.reports.engine_data import report_cases

    ok = data.meters["ok"]
    day = (T0 + timedelta(days=1)).date().isoformat()
    query = urlencode(
        {"channels": [IMPORT, EXPORT, "1-0:1.8.0*255"], "start": day, "end": day},
        doseq=True,
    )
    return {
        "meters:meter-detail": [
            reverse("meters:meter-detail", args=[ok.serial]),
            reverse("meters:meter-detail", args=[data.meters["never"].serial]),
        ],
        "collection:run-detail": [
            reverse("collection:run-detail", args=[data.run_partial.pk]),
            reverse("collection:run-detail", args=[data.run_on_demand.pk]),
        ],
        "meters:concentrator-detail": [
            reverse("meters:concentrator-detail", args=[data.world.grid_a.concentrator.pk])
        ],
        "collection:job-edit": [reverse("collection:job-edit", args=[data.job.pk])],
        "collection:job-delete": [reverse("collection:job-delete", args=[data.job.pk])],
        "vending:sale-detail": [reverse("vending:sale-detail", args=[data.sale.reference])],
        "vending:account-detail": [reverse("vending:account-detail", args=[data.account.pk])],
        "reports:export-job": [reverse("reports:export-job", args=[data.export.pk])],
        "reports:query": [reverse("reports:query"), reverse("reports:query") + "?" + query],
        "portal:purchase": [reverse("portal:purchase", args=[data.sale.reference])],
        "loadcontrol:bulk-detail": [reverse("loadcontrol:bulk-detail", args=[data.bulk.pk])],
        "reports:balance": [
            reverse("reports:balance"),
            reverse("reports:balance") + f"?from={day}&to={day}",
        ],
        "reports:load": [
            reverse("reports:load"),
            reverse("reports:load") + f"?from={day}&to={day}",
        ],
        "reports:load-node": [
            reverse("reports:load-node", args=[data.world.grid_a.transformer.pk])
            + f"?from={day}&to={day}",
        ],
        "reports:balance-node": [
            reverse("reports:balance-node", args=[data.world.grid_a.feeder.pk]),
            reverse("reports:balance-node", args=[data.world.grid_a.transformer.pk])
            + f"?resolution=interval&from={day}&to={day}",
        ],
        "loadcontrol:configuration-model": [
            reverse("loadcontrol:configuration-model", args=[ok.meter_model_id])
        ],
        "loadcontrol:configuration-meter": [
            reverse("loadcontrol:configuration-meter", args=[ok.serial])
        ],
        "loadcontrol:schedule-detail": [
            reverse("loadcontrol:schedule-detail", args=[data.schedule.pk])
        ],
        **report_cases(data.reports),
        "loadcontrol:schedule-edit": [
            reverse("loadcontrol:schedule-edit", args=[data.schedule.pk])
        ],
        "portal:payment": [reverse("portal:payment", args=[data.payment.reference])],
        "portal:pay-sandbox": [reverse("portal:pay-sandbox", args=[data.payment.reference])],
        "portal:bill": [
            reverse("portal:bill", args=[f"{month_start(timezone.localdate(), 1):%Y-%m}"])
        ],
    }


def pages(data: PageData, customer: bool = False) -> list[str]:
    """Every HTML page's URL, generated from the patterns (see the module's docstring).

    `customer`: the customer's pages (`CUSTOMER_PAGES`) instead of everyone else's.
    """
    table = cases(data)
    urls = []
    for name, _route, takes_args in url_names():
        if name in NOT_PAGES or (name in CUSTOMER_PAGES) != customer:
            continue
        if name in table:
            urls += table[name]
        elif not takes_args:
            urls.append(reverse(name))
    return urls


def make_page_data(world) -> PageData:
    """The demo-like data of the page tests: every meter state, runs, readings, a sale."""
    from collection.choices import ResultStatus, RunKind, RunStatus
    from collection.models import JobRun, MeterReadResult, ReadJob
    from loadcontrol.models import BulkCommand, LoadSchedule
    from loadcontrol.schedules import plan as plan_slots
    from reports.models import ExportJob, ExportStatus
    from tests.meters._data import ingest_days, ingest_reads, ingest_some_events
    from tests.pages.fleet import meters_in_every_state
    from tests.portal.data import store_days
    from tests.reports.engine_data import report_rows
    from tests.vending.conftest import make_vending
    from vending import actions as vending_actions

    meters = meters_in_every_state(world)
    place_on_map(world)
    store_days(world.grid_a.meters[0], days=400)  # the portal customer's usage
    ok = meters["ok"]
    ingest_days(ok)
    ingest_reads(ok)
    ingest_some_events(ok)
    job = ReadJob.objects.create(
        name="North feeder every 15 minutes with a long name", organisation=world.org_a,
        items=["clock", "registers", "profile"], every_minutes=15, crontab="",
    )  # fmt: skip
    now = timezone.now()
    partial = JobRun.objects.create(
        job=job, organisation=world.org_a, status=RunStatus.PARTIAL, total=3, done=3,
        succeeded=2, failed=1, values_stored=1234, started_at=now - timedelta(minutes=3),
        finished_at=now,
    )  # fmt: skip
    MeterReadResult.objects.create(
        run=partial, meter=meters["unreachable"], status=ResultStatus.FAILED, attempts=3,
        error_kind="Timeout", error="no answer within 10 s", retryable=True,
        exchange_log="2026-06-01T00:00:00+00:00 tx 0001000100010010\n"
        "2026-06-01T00:00:01+00:00 rx " + "a1b2c3d4" * 40,
    )  # fmt: skip
    for meter in (ok, meters["alarm"]):
        MeterReadResult.objects.create(
            run=partial, meter=meter, status=ResultStatus.OK, attempts=1, values_stored=617
        )
    on_demand = JobRun.objects.create(
        organisation=world.org_a, kind=RunKind.ON_DEMAND, status=RunStatus.SUCCEEDED,
        items=["clock", "registers", "events", "instantaneous", "relay"], total=1, done=1,
        succeeded=1, values_stored=9, started_at=now, finished_at=now,
    )  # fmt: skip
    MeterReadResult.objects.create(
        run=on_demand, meter=ok, status=ResultStatus.OK, attempts=1, values_stored=9,
        data=ON_DEMAND_DATA,
    )  # fmt: skip
    export = ExportJob.objects.create(
        organisation=world.org_a, requested_by=world.superuser, fmt="csv",
        status=ExportStatus.FAILED, error="the disk is full", rows_estimated=250000,
    )  # fmt: skip
    vend = make_vending(world)
    shift = vending_actions.open_shift(vend.station_a, acting_user=vend.clerk_a)
    sale = vending_actions.sell(
        vend.account_a, Decimal("173.90"), acting_user=vend.clerk_a, shift=shift
    )
    bulk = BulkCommand.objects.create(
        organisation=world.org_a, kind="disconnect", reason="Feeder works, planned outage",
        meter_ids=[m.pk for m in world.grid_a.meters], requested_by=world.operator_a,
        target={"by": "node", "label": f"Transformer {world.grid_a.transformer.code} and below"},
    )  # fmt: skip
    schedule = LoadSchedule.objects.create(
        organisation=world.org_a, name="Evening peak shaving, feeder 1", reason="peak",
        meter_ids=[m.pk for m in world.grid_a.meters], starts_on=now.date(), at=time(18, 0),
        duration_minutes=240, recurrence="weekly", weekdays=[0, 2, 4],
        created_by=world.operator_a, target={"by": "node", "label": "Feeder 1 and below"},
    )  # fmt: skip
    plan_slots(now)
    payment = portal_payment(vend.account_a, sale)
    reports = report_rows(world.org_a, world.readonly_a, world.admin_a, world.grid_a.transformer)
    return PageData(
        world, meters, partial, on_demand, job, export, sale, vend.account_a, bulk, schedule,
        payment, reports,
    )  # fmt: skip


def portal_payment(account, sale=None):
    """A portal payment of the account's customer (paid with `sale`, else pending)."""
    from portal.models import Payment, PaymentState

    return Payment.objects.create(
        customer=account.customer, account=account, organisation_id=account.organisation_id,
        amount=sale.amount_paid if sale else Decimal("10"), currency=account.tariff.currency,
        provider="sandbox", provider_ref=f"sbx_{account.pk}_{sale.pk if sale else 'open'}",
        state=PaymentState.PAID if sale else PaymentState.PENDING, sale=sale,
    )  # fmt: skip


def place_on_map(world) -> None:
    """Coordinates for both grids: substation, transformer, meters around it."""
    from meters.models import GridNode, Meter

    for n, grid in enumerate((world.grid_a, world.grid_b)):
        lat, lon = Decimal("51.50") + Decimal(n) / 50, Decimal("-0.12")
        GridNode.objects.filter(pk=grid.substation.pk).update(latitude=lat, longitude=lon)
        GridNode.objects.filter(pk=grid.transformer.pk).update(
            latitude=lat + Decimal("0.004"), longitude=lon + Decimal("0.006")
        )
        for i, meter in enumerate(
            Meter.objects.filter(service_point__path__startswith=grid.region.path).order_by("pk")
        ):
            Meter.objects.filter(pk=meter.pk).update(
                latitude=lat + Decimal("0.004") + Decimal(i % 4) / 2000,
                longitude=lon + Decimal("0.007") + Decimal(i // 4) / 1500,
            )


ON_DEMAND_DATA = {
    "clock": {
        "meter_time": "2026-06-01T10:00:03+00:00",
        "system_time": "2026-06-01T10:00:00.123456+00:00",
        "drift_s": 3.1,
        "set": False,
    },
    "registers": [
        {"obis": "1-0:1.8.0*255", "value": "8712345", "unit": "Wh", "capture_time": None},
        {"obis": "1-0:2.8.0*255", "value": "1234", "unit": "Wh", "capture_time": None},
        {
            "obis": "1-0:1.6.0*255",
            "value": "4321",
            "unit": "W",
            "capture_time": "2026-05-30T18:15:00+00:00",
        },
    ],
    "profiles": [
        {"profile": "1-0:99.1.0*255", "channels": ["1-0:1.29.0*255", "1-0:2.29.0*255"], "rows": 96}
    ],
    "events": [
        {"timestamp": "2026-06-01T03:00:00+00:00", "code": 1, "log": "0-0:99.98.0*255"},
        {"timestamp": "2026-06-01T03:05:00+00:00", "code": 2, "log": "0-0:99.98.0*255"},
    ],
    "instantaneous": {
        "read_at": "2026-06-01T10:00:02+00:00",
        "voltages": ["230.1", "229.8", "231.0"],
        "currents": ["4.12", "3.90", None],
        "angles": ["0", "120", "240"],
        "frequency": "50.01",
        "active_power": "2750",
    },
    "relay": {"connected": True, "control_state": 1},
}
