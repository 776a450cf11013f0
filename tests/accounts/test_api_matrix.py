"""Every registry and accounts API endpoint, tried by every fixture user (tests/api_matrix.py)."""

from dataclasses import dataclass
from decimal import Decimal

import pytest

from accounts.models import Organisation, User
from collection.models import JobRun, ReadJob
from meters.choices import NodeKind
from meters.models import Channel, Customer, DataConcentrator, GridNode, Meter, MeterModel
from tests.api_matrix import ApiSpec, generate_tests
from tests.vending.conftest import SGC, Vending, make_vending, meter_number
from vending.models import (
    ManagementOrder,
    PrepaidAccount,
    Sale,
    Shift,
    Tariff,
    VendingKey,
    VendingStation,
)


@dataclass
class VendingRows:
    """tests/vending/conftest.py's rows plus each organisation's own tariff and key, and a
    meter and customer of organisation A that no prepaid account uses yet."""

    vend: Vending
    tariff_a: Tariff
    tariff_b: Tariff
    key_a: VendingKey
    key_b: VendingKey
    spare_meter: Meter
    spare_customer: Customer


def vending(w) -> VendingRows:
    """The vending rows of this world, made once (the `setup` of every vending spec)."""
    if getattr(w, "vending_rows", None) is None:
        vend = make_vending(w)
        point = GridNode.objects.create(
            kind=NodeKind.SERVICE_POINT, code="NA-SP9", name="Service point 9",
            parent=w.grid_a.transformer, organisation=w.org_a,
        )  # fmt: skip
        w.vending_rows = VendingRows(
            vend=vend,
            tariff_a=Tariff.objects.create(
                organisation=w.org_a,
                code="A-OWN",
                name="North own",
                currency="ZAR",
                price_per_kwh=Decimal("1.5000"),
            ),
            tariff_b=Tariff.objects.create(
                organisation=w.org_b,
                code="B-OWN",
                name="South own",
                currency="ZAR",
                price_per_kwh=Decimal("1.2500"),
            ),
            key_a=VendingKey.objects.create(
                organisation=w.org_a, sgc=SGC, krn=2, key="cdcdcdcdcdcdcdcd"
            ),
            key_b=VendingKey.objects.create(
                organisation=w.org_b, sgc=SGC, krn=2, key="efefefefefefefef"
            ),
            spare_meter=Meter.objects.create(
                serial="NA000009",
                meter_model=w.meter_model,
                service_point=point,
                organisation=w.org_a,
                host="127.0.0.1",
                port=4059,
            ),
            spare_customer=Customer.objects.create(
                account_number="NA-ACC-9", name="Customer NA 9", service_point=point
            ),
        )
    return w.vending_rows


def vending_readonly(w):
    """Read-only here: the analyst, an engineer, an operator, and a clerk (sells, no more)."""
    return [w.readonly_a, w.engineer_a, w.operator_a, vending(w).vend.clerk_a]


SPECS = [
    ApiSpec(
        basename="gridnode",
        url="/api/grid-nodes/",
        model=GridNode,
        writer="engineer_a",
        other_writer="engineer_b",
        object_a=lambda w: w.grid_a.feeder,
        create_payload=lambda w: {
            "kind": NodeKind.TRANSFORMER,
            "code": "NEW-T9",
            "name": "New transformer",
            "parent": w.grid_a.feeder.pk,
            "rated_kva": "315.00",
        },
        update_payload=lambda w: {"name": "Renamed"},
    ),
    ApiSpec(
        basename="metermodel",
        url="/api/meter-models/",
        model=MeterModel,
        writer="engineer_a",
        other_writer="engineer_b",
        object_a=lambda w: MeterModel.objects.create(
            manufacturer="North", name="Local", organisation=w.org_a
        ),
        create_payload=lambda w: {
            "manufacturer": "Landis",
            "name": "E650",
            "protocol": "dlms",
            "organisation": w.org_a.pk,
        },
        update_payload=lambda w: {"description": "changed"},
        # The utility's shared model is visible below it.
        extra_visible_to_a=lambda w: MeterModel.objects.filter(organisation=w.utility).count(),
    ),
    ApiSpec(
        basename="channel",
        url="/api/channels/",
        model=Channel,
        writer="engineer_a",
        other_writer="engineer_b",
        object_a=lambda w: Channel.objects.create(
            meter_model=MeterModel.objects.create(
                manufacturer="North", name="Own", organisation=w.org_a
            ),
            obis="1.0.1.8.0.255",
            name="+A",
            unit="Wh",
            kind="register",
        ),
        create_payload=lambda w: {
            "meter_model": MeterModel.objects.get_or_create(
                manufacturer="North", name="Own2", organisation=w.org_a
            )[0].pk,
            "obis": "1.8.0",
            "name": "+A",
            "unit": "Wh",
            "scaler": 0,
            "kind": "register",
        },
        update_payload=lambda w: {"unit": "kWh", "scaler": 3},
    ),
    ApiSpec(
        basename="dataconcentrator",
        url="/api/concentrators/",
        model=DataConcentrator,
        writer="engineer_a",
        other_writer="engineer_b",
        object_a=lambda w: w.grid_a.concentrator,
        create_payload=lambda w: {
            "serial": "DC-NEW",
            "organisation": w.org_a.pk,
            "grid_node": w.grid_a.transformer.pk,
            "protocol": "dlms",
            "transport": "tcp",
            "host": "10.0.0.5",
            "port": 4059,
            "security": "low",
            "password": "dc-secret-1",
        },
        update_payload=lambda w: {"name": "renamed", "password": "new-dc-secret"},
        delete_object=lambda w: DataConcentrator.objects.create(
            serial="DC-SPARE", organisation=w.org_a, host="h", port=1
        ),
        secret_fields=("password", "auth_key", "block_key"),
    ),
    ApiSpec(
        basename="meter",
        url="/api/meters/",
        model=Meter,
        writer="engineer_a",
        other_writer="engineer_b",
        object_a=lambda w: w.grid_a.meters[0],
        create_payload=lambda w: {
            "serial": "NEW000001",
            "meter_model": w.meter_model.pk,
            "service_point": w.grid_a.service_points[0].pk,
            "status": "installed",
            "protocol": "dlms",
            "transport": "tcp",
            "host": "10.1.1.1",
            "port": 4059,
            "security": "high",
            "auth_key": "00" * 16,
            "block_key": "11" * 16,
            "system_title": "4142434445464748",
            "ct_ratio": "1.000",
        },
        update_payload=lambda w: {"firmware": "2.1", "password": "changed-pw", "security": "low"},
        secret_fields=("password", "auth_key", "block_key"),
    ),
    ApiSpec(
        basename="customer",
        url="/api/customers/",
        model=Customer,
        writer="engineer_a",
        other_writer="engineer_b",
        object_a=lambda w: w.grid_a.customers[1],
        create_payload=lambda w: {
            "account_number": "NEW-ACC",
            "name": "New Customer",
            "service_point": w.grid_a.service_points[1].pk,
            "email": "new@example.invalid",
        },
        update_payload=lambda w: {"phone": "+44 1234"},
    ),
    ApiSpec(
        basename="organisation",
        url="/api/organisations/",
        model=Organisation,
        writer="admin_a",
        other_writer="admin_b",
        object_a=lambda w: w.org_a,
        create_payload=lambda w: {
            "name": "North district 1",
            "code": "north-d1",
            "parent": w.org_a.pk,
        },
        update_payload=lambda w: {"name": "North (renamed)"},
        delete_object=lambda w: Organisation.objects.create(
            name="North spare", code="north-spare", parent=w.org_a
        ),
    ),
    ApiSpec(
        basename="user",
        url="/api/users/",
        model=User,
        writer="admin_a",
        other_writer="admin_b",
        object_a=lambda w: w.operator_a,
        create_payload=lambda w: {
            "username": "new-north-user",
            "organisation": w.org_a.pk,
            "roles": ["operator"],
            "password": "a-Strong-passw0rd!",
            "email": "nn@example.invalid",
        },
        update_payload=lambda w: {"first_name": "Changed", "password": "another-Strong-pw9"},
        secret_fields=("password",),
    ),
    ApiSpec(
        basename="readjob",
        url="/api/read-jobs/",
        model=ReadJob,
        writer="engineer_a",
        other_writer="engineer_b",
        object_a=lambda w: ReadJob.objects.create(name="North daily", organisation=w.org_a),
        create_payload=lambda w: {
            "name": "Feeder 1 nightly",
            "organisation": w.org_a.pk,
            "grid_node": w.grid_a.feeder.pk,
            "items": ["clock", "registers", "profile"],
            "crontab": "30 2 * * *",
        },
        update_payload=lambda w: {"crontab": "0 3 * * 1-5", "enabled": False},
    ),
    # Vending catalogue, keys and accounts: supervisors (administrators) write, clerks sell.
    ApiSpec(
        basename="vendingstation",
        url="/api/vending/stations/",
        model=VendingStation,
        writer="admin_a",
        other_writer="admin_b",
        setup=vending,
        readonly_users=vending_readonly,
        object_a=lambda w: vending(w).vend.station_a,
        create_payload=lambda w: {
            "organisation": w.org_a.pk,
            "code": "STA-NEW",
            "name": "North agent shop",
            "clerks": [vending(w).vend.clerk_a.pk],
        },
        update_payload=lambda w: {"location": "Market square", "active": False},
        b_references=lambda w: {"clerks": [vending(w).vend.clerk_b.pk]},
    ),
    ApiSpec(
        basename="vendingkey",
        url="/api/vending/keys/",
        model=VendingKey,
        writer="admin_a",
        other_writer="admin_b",
        setup=vending,
        readonly_users=vending_readonly,
        object_a=lambda w: vending(w).key_a,
        create_payload=lambda w: {
            "organisation": w.org_a.pk,
            "sgc": 654321,
            "krn": 1,
            "label": "North SGC",
            "key": "0102030405060708",
        },
        update_payload=lambda w: {"label": "rotated", "key": "1112131415161718"},
        secret_fields=("key",),
    ),
    ApiSpec(
        basename="tariff",
        url="/api/vending/tariffs/",
        model=Tariff,
        writer="admin_a",
        other_writer="admin_b",
        setup=vending,
        readonly_users=vending_readonly,
        object_a=lambda w: vending(w).tariff_a,
        create_payload=lambda w: {
            "organisation": w.org_a.pk,
            "code": "A-BLOCK",
            "name": "North lifeline",
            "kind": "block",
            "currency": "ZAR",
            "blocks": [
                {"up_to_kwh": "50.0", "price_per_kwh": "1.0000"},
                {"up_to_kwh": None, "price_per_kwh": "2.2500"},
            ],
        },
        update_payload=lambda w: {"name": "North lifeline (2026)", "tax_percent": "15.00"},
        # The utility's shared tariffs are visible below it.
        extra_visible_to_a=lambda w: Tariff.objects.filter(organisation=w.utility).count(),
    ),
    ApiSpec(
        basename="prepaidaccount",
        url="/api/vending/accounts/",
        model=PrepaidAccount,
        writer="admin_a",
        other_writer="admin_b",
        setup=vending,
        readonly_users=vending_readonly,
        object_a=lambda w: vending(w).vend.account_a,
        create_payload=lambda w: {
            "customer": vending(w).spare_customer.pk,
            "meter": vending(w).spare_meter.pk,
            "tariff": vending(w).tariff_a.pk,
            "meter_number": meter_number(9),
            "sgc": SGC,
            "krn": 1,
            "ti": 1,
        },
        update_payload=lambda w: {"ti": 2, "active": False},
        # Organisation B's customer and meter without an account, and its own tariff.
        b_references=lambda w: {
            "customer": w.grid_b.customers[1],
            "meter": w.grid_b.meters[1],
            "tariff": vending(w).tariff_b,
        },
    ),
]

# Alarms (meters/alarms/api.py). Subscriptions are each user's own: the writer sees only
# theirs, so organisation A's other users' rows are subtracted from what A's writer lists.
from meters.alarms.models import AlarmRule, AlarmSubscription  # noqa: E402
from tests.meters.alarms.helpers import make_rule, make_subscription  # noqa: E402


def _subscriptions(w):
    for user in (w.engineer_a, w.readonly_a, w.engineer_b):
        if not AlarmSubscription.objects.filter(user=user).exists():
            make_subscription(user, min_severity=20)


SPECS += [
    ApiSpec(
        basename="alarmrule",
        url="/api/alarm-rules/",
        model=AlarmRule,
        writer="engineer_a",
        other_writer="engineer_b",
        object_a=lambda w: make_rule(w.org_a),
        create_payload=lambda w: {
            "name": "North transformer failures",
            "organisation": w.org_a.pk,
            "kinds": ["power_failure", "phase_loss"],
            "grid_node": w.grid_a.transformer.pk,
            "severity": 30,
            "dedup_window_s": 600,
            "active": True,
        },
        update_payload=lambda w: {"severity": 40, "kinds": ["magnetic_tamper"]},
        setup=lambda w: make_rule(w.org_b),
    ),
    ApiSpec(
        basename="alarmsubscription",
        url="/api/alarm-subscriptions/",
        model=AlarmSubscription,
        writer="engineer_a",
        other_writer="engineer_b",
        # The analyst's own row: they may read it, not change it (no write permission).
        object_a=lambda w: AlarmSubscription.objects.get(user=w.readonly_a),
        create_payload=lambda w: {
            "organisation": w.org_a.pk,
            "kinds": ["power_failure"],
            "min_severity": 30,
            "by_email": True,
            "by_sms": True,
            "phone": "+27820000001",
            "quiet_start": "22:00",
            "quiet_end": "06:00",
            "timezone": "Africa/Johannesburg",
        },
        update_payload=lambda w: {"min_severity": 40},
        setup=_subscriptions,
        extra_visible_to_a=lambda w: (
            -AlarmSubscription.objects.filter(organisation__path__startswith=w.org_a.path)
            .exclude(user=w.engineer_a)
            .count()
        ),
    ),
]

for _spec in SPECS:
    globals().update(generate_tests(_spec))


def test_every_api_model_has_generated_tests():
    """Meta-test: a viewset whose model has no ApiSpec here fails the suite."""
    from django.urls import get_resolver

    covered = {spec.model for spec in SPECS} | EXEMPT_MODELS
    missing = set()
    for pattern in _viewset_patterns(get_resolver()):
        model = getattr(pattern.callback.cls, "queryset", None)
        model = model.model if model is not None else None
        if model is not None and model not in covered:
            missing.add(model._meta.label)
    assert not missing, f"API models without generated permission tests: {sorted(missing)}"


# Read-only endpoints tested on their own (tests/accounts/test_activity_log.py).
EXEMPT_MODELS: set = {
    JobRun,  # read-only: tests/collection/test_collection_api.py
    # Vending rows made only through vending.actions (GET + POST of an action, no PUT,
    # PATCH or DELETE); their scoping is tested in tests/vending:
    # sales (counter sale, payment, reverse, reprint, receipt): other organisation 404 in
    # test_scoping.py::test_other_organisation_gets_404 and
    # test_scoping_matrix.py::test_sale_actions_other_organisation_gets_404, other station
    # 404 in test_scoping.py::test_clerk_sees_only_their_station, read-only 403 in
    # test_scoping.py::test_readonly_users_get_403_on_writes.
    Sale,
    # shifts (open, close): test_scoping_matrix.py::test_shifts_are_scoped (404 for the
    # other organisation and station, 403 for read-only) and
    # test_scoping.py::test_readonly_users_get_403_on_writes.
    Shift,
    # management tokens: test_scoping_matrix.py::test_management_orders_are_scoped (404 for
    # the other organisation, 403 for read-only and clerks) and
    # test_api.py::test_management_tokens_api_role_checks.
    ManagementOrder,
}
# Alarms change only through meters.alarms.actions (GET, acknowledge, clear) and deliveries
# are a read-only log: scoping, 404 for the other organisation and 403 for read-only users
# in tests/meters/alarms/test_api.py (test_alarm_detail_other_organisation_404,
# test_acknowledge_and_clear_via_api, test_delivery_log_is_scoped).
from meters.alarms.models import Alarm, NotificationDelivery  # noqa: E402

EXEMPT_MODELS |= {Alarm, NotificationDelivery}
# Meter commands are queued and cancelled only through loadcontrol.actions (GET, POST to
# queue, POST cancel; no PUT, PATCH or DELETE): list and detail of the other organisation,
# 404 on its meter and its commands, 403 for analysts and engineers on switching, customers
# and anonymous users refused, in tests/loadcontrol/test_command_api.py.
from collection.models import MeterCommand  # noqa: E402

EXEMPT_MODELS |= {MeterCommand}
# Bulk commands are requested, approved, rejected and cancelled only through
# loadcontrol.actions (GET, POST create/preview/approve/reject/cancel; no PUT, PATCH or
# DELETE): the other organisation's bulk 404 (detail, approve), its meters and nodes "no such"
# (400), 403 for analysts, engineers (switching) and the requester approving, in
# tests/loadcontrol/test_bulk_api.py.
from loadcontrol.models import BulkCommand  # noqa: E402

EXEMPT_MODELS |= {BulkCommand}
# Load schedules likewise (GET, POST create/preview/approve/cancel; no PUT, PATCH or
# DELETE): the other organisation's schedule 404, its meters "no such", 403 for analysts and
# the author approving, in tests/loadcontrol/test_schedule_api.py.
from loadcontrol.models import LoadSchedule  # noqa: E402

EXEMPT_MODELS |= {LoadSchedule}
# What meters read back is written only by the command queue (GET only): scoping (the other
# organisation's rows neither listed nor found, customers refused) in
# tests/loadcontrol/test_configuration.py::test_actual_configuration_api_is_scoped_and_read_only.
from meters.models import ActualConfiguration, DesiredConfiguration  # noqa: E402

EXEMPT_MODELS |= {ActualConfiguration}


def _desired_of(meter, destination="10.0.0.9:4060"):
    return DesiredConfiguration.objects.create(
        meter=meter, section="push", value={"destination": destination}
    )


SPECS.append(
    ApiSpec(
        basename="desiredconfiguration",
        url="/api/desired-configurations/",
        model=DesiredConfiguration,
        writer="engineer_a",
        other_writer="engineer_b",
        object_a=lambda w: _desired_of(w.grid_a.meters[0]),
        create_payload=lambda w: {
            "meter": w.grid_a.meters[1].pk,
            "section": "push",
            "value": {"destination": "10.0.0.3:4060"},
        },
        update_payload=lambda w: {"value": {"destination": "10.0.0.2:4060"}},
    )
)
globals().update(generate_tests(SPECS[-1]))

# The report engine (tests/reports/engine_data.py: both regions' definitions and schedules).
# Versions, runs and deliveries are read-only here (runs are queued by POST
# /api/report-definitions/{id}/run/): scoping, 404 for region B and no writes in
# tests/reports/test_definition_api.py::test_versions_runs_and_deliveries_are_scoped_and_read_only.
from reports.models import (  # noqa: E402
    ReportDefinition,
    ReportDelivery,
    ReportRun,
    ReportSchedule,
    ReportVersion,
)
from tests.reports.engine_data import both_regions  # noqa: E402

EXEMPT_MODELS |= {ReportVersion, ReportRun, ReportDelivery}
# The file exchange log is read-only: scoping, 404 for region B, no writes, customers 403 in
# tests/reports/test_exchange_api.py::test_the_log_is_scoped_and_read_only.
from reports.models import ExchangeLog  # noqa: E402

EXEMPT_MODELS |= {ExchangeLog}


def _report_rows(w):
    if getattr(w, "report_rows", None) is None:
        w.report_rows = both_regions(w)
    return w.report_rows


SPECS += [
    ApiSpec(
        basename="reportdefinition",
        url="/api/report-definitions/",
        model=ReportDefinition,
        writer="admin_a",  # analysts add and change, only administrators delete
        other_writer="admin_b",
        object_a=lambda w: _report_rows(w)[0].definition,
        create_payload=lambda w: {
            "organisation": w.org_a.pk,
            "name": "Tamper below the transformer",
            "source": "tamper",
            "node": w.grid_a.transformer.pk,
            "period": "last_30_days",
        },
        update_payload=lambda w: {"name": "Renamed", "columns": ["serial", "score"]},
        setup=_report_rows,
        readonly_users=lambda w: [w.operator_a, w.engineer_a],
        b_references=lambda w: {"node": w.grid_b.transformer},
    ),
    ApiSpec(
        basename="reportschedule",
        url="/api/report-schedules/",
        model=ReportSchedule,
        writer="admin_a",
        other_writer="admin_b",
        object_a=lambda w: _report_rows(w)[0].schedule,
        create_payload=lambda w: {
            "definition": _report_rows(w)[0].definition.pk,
            "frequency": "daily",
            "at": "07:15",
            "fmt": "csv",
            "recipients": [w.admin_a.pk],
        },
        update_payload=lambda w: {"frequency": "weekly", "weekday": 4},
        setup=_report_rows,
        readonly_users=lambda w: [w.operator_a, w.engineer_a],
        b_references=lambda w: {"definition": _report_rows(w)[1].definition},
    ),
]
for _spec in SPECS[-2:]:
    globals().update(generate_tests(_spec))


def _viewset_patterns(resolver):
    for pattern in resolver.url_patterns:
        if hasattr(pattern, "url_patterns"):
            yield from _viewset_patterns(pattern)
        elif getattr(getattr(pattern, "callback", None), "cls", None) is not None:
            yield pattern


@pytest.mark.django_db
def test_decimal_payload_is_stored_exactly(world):
    from tests.api_matrix import client_for

    response = client_for(world.engineer_a).patch(
        f"/api/meters/{world.grid_a.meters[0].pk}/", {"ct_ratio": "40.125"}, format="json"
    )
    assert response.status_code == 200
    assert Meter.objects.get(pk=world.grid_a.meters[0].pk).ct_ratio == Decimal("40.125")
