"""Every admin page is scoped like the API: generated over the admin registry."""

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from accounts.admin_base import ScopedModelAdmin
from accounts.models import ActivityLog
from meters.models import Channel, Customer, DataConcentrator, GridNode, Meter, MeterModel
from tests.admin_forms import change_url, page_data, staff_client
from vending.models import (
    AccountMovement,
    ManagementOrder,
    PrepaidAccount,
    Sale,
    SaleReversal,
    Shift,
    Tariff,
    TariffBlock,
    Token,
    VendingKey,
    VendingStation,
)

pytestmark = pytest.mark.django_db


def _vending(w):
    """Vending rows in both organisations, made through vending.actions like real ones."""
    from decimal import Decimal as D

    from tests.vending.conftest import NOW, make_vending
    from vending import actions

    v = make_vending(w)
    pairs = {
        VendingStation: (v.station_a, v.station_b),
        PrepaidAccount: (v.account_a, v.account_b),
        VendingKey: tuple(
            VendingKey.objects.create(organisation=org, sgc=1, krn=1, key="0102030405060708")
            for org in (w.org_a, w.org_b)
        ),
        Tariff: tuple(
            Tariff.objects.create(organisation=org, code="OWN", name="Own", currency="ZAR")
            for org in (w.org_a, w.org_b)
        ),
    }
    pairs[TariffBlock] = tuple(
        TariffBlock.objects.create(tariff=tariff, up_to_kwh=None, price_per_kwh=D("2"))
        for tariff in pairs[Tariff]
    )
    sales = []
    for clerk, station, account in ((v.clerk_a, v.station_a, v.account_a),
                                    (v.clerk_b, v.station_b, v.account_b)):  # fmt: skip
        shift = actions.open_shift(station, acting_user=clerk)
        sales.append(actions.sell(account, D("10"), acting_user=clerk, shift=shift, now=NOW))
    pairs[Shift] = tuple(sale.shift for sale in sales)
    pairs[Sale] = tuple(sales)
    pairs[Token] = tuple(sale.credit_token for sale in sales)
    # A second sale in each organisation is reversed; the first stays "completed".
    pairs[SaleReversal] = tuple(
        actions.reverse_sale(
            actions.sell(sale.account, D("5"), acting_user=sale.sold_by, shift=sale.shift),
            acting_user=admin,
            reason="sold in error",
            token_entered=False,
            refund_shift=sale.shift,
        )
        for sale, admin in zip(sales, (w.admin_a, w.admin_b), strict=True)
    )
    pairs[AccountMovement] = tuple(
        actions.adjust_debt(account, D("1.00"), acting_user=admin, reason="arrears").movements.get()
        for account, admin in ((v.account_a, w.admin_a), (v.account_b, w.admin_b))
    )
    pairs[ManagementOrder] = tuple(
        actions.issue_management_tokens(
            account, "clear-tamper", acting_user=admin, reason="tamper cleared"
        )
        for account, admin in ((v.account_a, w.admin_a), (v.account_b, w.admin_b))
    )
    return pairs


# For each scoped admin model: world -> (an object of organisation A, one of organisation B).
OBJECTS = {
    GridNode: lambda w: (w.grid_a.feeder, w.grid_b.feeder),
    Meter: lambda w: (w.grid_a.meters[0], w.grid_b.meters[0]),
    Customer: lambda w: (w.grid_a.customers[0], w.grid_b.customers[0]),
    DataConcentrator: lambda w: (w.grid_a.concentrator, w.grid_b.concentrator),
    MeterModel: lambda w: (
        MeterModel.objects.create(manufacturer="N", name="A-own", organisation=w.org_a),
        MeterModel.objects.create(manufacturer="S", name="B-own", organisation=w.org_b),
    ),
    **{
        model: lambda w, model=model: _vending(w)[model]
        for model in (
            VendingStation,
            PrepaidAccount,
            VendingKey,
            Tariff,
            TariffBlock,
            Shift,
            Sale,
            Token,
            SaleReversal,
            AccountMovement,
            ManagementOrder,
        )  # fmt: skip
    },
    Channel: lambda w: (
        Channel.objects.create(
            meter_model=MeterModel.objects.create(
                manufacturer="N", name="A1", organisation=w.org_a
            ),
            obis="1.8.0",
            name="+A",
            kind="register",
        ),
        Channel.objects.create(
            meter_model=MeterModel.objects.create(
                manufacturer="S", name="B1", organisation=w.org_b
            ),
            obis="1.8.0",
            name="+A",
            kind="register",
        ),
    ),
}

# Alarms (tests/meters/alarms/helpers.py): rules, alarms, subscriptions (own only), deliveries.
from meters.alarms.models import Alarm, AlarmRule, AlarmSubscription, NotificationDelivery  # noqa: E402
from tests.meters.alarms.helpers import alarm_rows  # noqa: E402

OBJECTS.update(
    {
        model: lambda w, model=model: alarm_rows(w)[model]
        for model in (AlarmRule, Alarm, AlarmSubscription, NotificationDelivery)
    }
)


# Collection (collection/admin.py): jobs are edited, runs and results only looked at.
def _collection_rows(w):
    from datetime import timedelta

    from django.utils import timezone

    from collection.models import JobRun, MeterCommand, MeterReadResult, ReadJob
    from meters.models import CommStatus

    rows = {}
    for org, grid, key in ((w.org_a, w.grid_a, "a"), (w.org_b, w.grid_b, "b")):
        job = ReadJob.objects.create(name=f"job {key}", organisation=org)
        run = JobRun.objects.create(job=job, organisation=org)
        result = MeterReadResult.objects.create(run=run, meter=grid.meters[0])
        status = CommStatus.objects.create(meter=grid.meters[0])
        command = MeterCommand.objects.create(
            organisation=org,
            meter=grid.meters[0],
            kind="disconnect",
            reason=f"walk {key}",
            expires_at=timezone.now() + timedelta(hours=1),
        )
        rows[key] = {
            ReadJob: job,
            JobRun: run,
            MeterReadResult: result,
            CommStatus: status,
            MeterCommand: command,
        }
    return rows


def _collection_pair(model):
    def pair(w):
        rows = _collection_rows(w)
        return rows["a"][model], rows["b"][model]

    return pair


from collection.models import JobRun, MeterReadResult, ReadJob  # noqa: E402
from meters.models import CommStatus  # noqa: E402

OBJECTS.update({m: _collection_pair(m) for m in (ReadJob, JobRun, MeterReadResult, CommStatus)})

# The portal's planned outages (entered by staff in the admin, on their grid).
from portal.models import PlannedOutage  # noqa: E402


def _planned_outages(w):
    from datetime import timedelta

    from django.utils import timezone

    start = timezone.now() + timedelta(days=2)
    return tuple(
        PlannedOutage.objects.create(
            node=grid.feeder,
            starts_at=start,
            ends_at=start + timedelta(hours=4),
            reason=f"Feeder maintenance {grid.feeder.code}",
        )  # fmt: skip
        for grid in (w.grid_a, w.grid_b)
    )


OBJECTS[PlannedOutage] = _planned_outages

# The portal's payments (read-only in the admin) and outage preferences, one per region.
from portal.models import OutagePreference, Payment  # noqa: E402


def _prepaid_accounts(w):
    """Region A's and B's first prepaid account (made by _vending unless already there)."""
    found = [PrepaidAccount.objects.filter(organisation=o).order_by("pk").first()
             for o in (w.org_a, w.org_b)]  # fmt: skip
    if None in found:
        v = _vending(w)[PrepaidAccount]
        found = list(v)
    return found


def _payments(w):
    from decimal import Decimal as D

    return tuple(
        Payment.objects.create(
            customer=account.customer,
            account=account,
            organisation_id=account.organisation_id,
            amount=D("15"),
            currency=account.tariff.currency,
            provider="sandbox",
            provider_ref=f"sbx_admin_{account.pk}",
            detail="cancelled at the checkout",
        )  # fmt: skip
        for account in _prepaid_accounts(w)
    )


def _outage_preferences(w):
    from datetime import time

    return tuple(
        OutagePreference.objects.create(
            customer=grid.customers[0], by_sms=False, quiet_start=time(22), quiet_end=time(6)
        )
        for grid in (w.grid_a, w.grid_b)
    )


# Stored bills and planned-outage notices (read-only in the admin), one per region.
from portal.models import Bill, PlannedOutageNotice  # noqa: E402


def _bills(w):
    from datetime import date

    from django.utils import timezone

    return tuple(
        Bill.objects.create(
            organisation_id=grid.customers[0].organisation_id,
            customer=grid.customers[0],
            month=date(2026, 5, 1),
            issued_at=timezone.now(),
            account_number=grid.customers[0].account_number,
            total=12,
            content={"lines": []},
        )  # fmt: skip
        for grid in (w.grid_a, w.grid_b)
    )


def _planned_outage_notices(w):
    from django.utils import timezone

    return tuple(
        PlannedOutageNotice.objects.create(
            planned_outage=outage,
            customer=grid.customers[0],
            channel="email",
            recipient=f"{grid.feeder.code.lower()}@example.test",
            body=f"Planned work on {grid.feeder.code}",
            created_at=timezone.now(),
        )  # fmt: skip
        for outage, grid in zip(_planned_outages(w), (w.grid_a, w.grid_b), strict=True)
    )


OBJECTS[Payment] = _payments
OBJECTS[OutagePreference] = _outage_preferences
OBJECTS[Bill] = _bills
OBJECTS[PlannedOutageNotice] = _planned_outage_notices


# Shared lines (meters.CommLine): each region's concentrator as a line, down, with its one
# line alarm (an alarm on a line, not a meter), so the walks see both.
def _line_rows(w):
    from django.utils import timezone

    from meters.alarms.events import EventKind
    from meters.models import CommLine

    rows = []
    for org, grid in ((w.org_a, w.grid_a), (w.org_b, w.grid_b)):
        concentrator = grid.concentrator
        line = CommLine.objects.create(
            key=f"concentrator:{concentrator.pk}",
            kind="concentrator",
            label=concentrator.serial,
            organisation=org,
            concentrator=concentrator,
            down=True,
            down_since=timezone.now(),
            last_error=f"ConnectionFailed: {concentrator.serial} refused",
        )
        rule = AlarmRule.objects.create(
            name=f"lines {org.code}", organisation=org, kinds=[EventKind.LINE_DOWN]
        )
        Alarm.objects.create(
            rule=rule,
            line=line,
            organisation=org,
            kind=EventKind.LINE_DOWN,
            severity=rule.severity,
            count=1,
            first_event_at=line.down_since,
            last_event_at=line.down_since,
        )
        rows.append(line)
    return tuple(rows)


from meters.models import CommLine  # noqa: E402

OBJECTS[CommLine] = _line_rows


# The report engine (reports/admin.py): definitions and schedules are edited there; versions,
# runs, deliveries and data-query exports only looked at.
from reports.models import (  # noqa: E402
    ExchangeLog,
    ExchangeTarget,
    ExportJob,
    ReportDefinition,
    ReportDelivery,
    ReportRun,
    ReportSchedule,
    ReportVersion,
)


def _report_pair(model):
    def pair(w):
        from tests.reports.engine_data import report_pairs

        return report_pairs(w)[model]

    return pair


OBJECTS.update(
    {
        m: _report_pair(m)
        for m in (
            ReportDefinition,
            ReportVersion,
            ReportRun,
            ReportSchedule,
            ReportDelivery,
            ExchangeTarget,
            ExchangeLog,
        )
    }  # fmt: skip
)
OBJECTS[ExportJob] = lambda w: tuple(
    ExportJob.objects.create(organisation=user.organisation, requested_by=user, fmt="csv")
    for user in (w.admin_a, w.admin_b)
)


def _admin_models():
    from accounts.models import Organisation, User

    extra = {
        Organisation: lambda w: (w.org_a, w.org_b),
        User: lambda w: (w.operator_a, w.operator_b),
    }
    objects = {**OBJECTS, **extra}
    return [
        (model, objects.get(model))
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, ScopedModelAdmin)
    ]


@pytest.mark.parametrize("model,objects", _admin_models(), ids=lambda v: getattr(v, "__name__", ""))
def test_admin_is_scoped(world, model, objects):
    assert objects is not None, f"{model.__name__}: add it to OBJECTS in this test"
    obj_a, obj_b = objects(world)
    user = world.admin_a
    client = staff_client(user)
    listing = client.get(
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    )
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == model.objects.restrict(user, "view").count()
    shown = {o.pk for o in listing.context["cl"].result_list}
    assert obj_a.pk in shown and obj_b.pk not in shown
    assert client.get(change_url(obj_a)).status_code == 200
    assert client.get(change_url(obj_b)).status_code == 404
    delete_b = reverse(
        f"admin:{model._meta.app_label}_{model._meta.model_name}_delete", args=[obj_b.pk]
    )
    request = RequestFactory().get("/")
    request.user = user
    if admin.site._registry[model].has_delete_permission(request):
        assert client.post(delete_b, {"post": "yes"}).status_code == 404
    else:
        # A read-only admin (rows that change only through vending.actions) refuses every
        # delete before looking the row up: the same 403 for A's own row, so it says nothing
        # about B's rows, and neither row goes.
        delete_a = reverse(
            f"admin:{model._meta.app_label}_{model._meta.model_name}_delete", args=[obj_a.pk]
        )
        assert client.post(delete_b, {"post": "yes"}).status_code == 403
        assert client.post(delete_a, {"post": "yes"}).status_code == 403
        assert model.objects.filter(pk=obj_a.pk).exists()
    assert model.objects.filter(pk=obj_b.pk).exists()


def test_readonly_staff_cannot_change_in_admin(world):
    client = staff_client(world.readonly_a)
    meter = world.grid_a.meters[0]
    page = client.get(change_url(meter))
    assert page.status_code == 200  # analysts may look ...
    assert b'name="_save"' not in page.content  # ... not save
    response = client.post(change_url(meter), {"serial": "HIJACK"})
    assert response.status_code == 403
    meter.refresh_from_db()
    assert meter.serial != "HIJACK"


def test_admin_change_is_audited_and_secret_masked(world):
    client = staff_client(world.engineer_a)
    meter = world.grid_a.meters[0]
    page = client.get(change_url(meter))
    assert b"secret-pw-1" not in page.content
    data = page_data(page)  # the meter's form and its endpoint's (an inline)
    secrets = [k for k in data if k.endswith("-password")]
    assert len(secrets) == 1
    data.update({"firmware": "7.7", secrets[0]: ""})  # blank password keeps the stored one
    response = client.post(change_url(meter), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    meter.refresh_from_db()
    assert meter.firmware == "7.7" and meter.password == "secret-pw-1"
    row = ActivityLog.objects.get(action="update", object_id=str(meter.pk))
    assert row.changes["firmware"] == ["", "7.7"] and "password" not in row.changes


def _autocomplete_fields():
    """(model, field name) of every autocomplete picker of a scoped admin."""
    return [
        (model, name)
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, ScopedModelAdmin)
        for name in model_admin.autocomplete_fields
    ]


def test_there_are_autocomplete_pickers():
    assert ("ReportDefinition", "node") in {(m.__name__, f) for m, f in _autocomplete_fields()}


@pytest.mark.parametrize(
    "model,field", _autocomplete_fields(), ids=lambda v: getattr(v, "__name__", v)
)
def test_admin_autocomplete_offers_only_objects_in_scope(world, model, field):
    """An autocomplete picker's answers (every page of them, any search term) hold only
    objects the user may see; the other region's exist and are never offered."""
    from tests.accounts.test_filter_scoping import _populate

    _populate(world)
    user = world.admin_a
    related = model._meta.get_field(field).remote_field.model
    everything = related._default_manager.all()
    scoped = set(everything.restrict(user, "view").values_list("pk", flat=True))
    foreign = everything.exclude(pk__in=scoped)
    assert foreign.exists(), f"{model.__name__}.{field}: no foreign {related.__name__}"
    client = staff_client(user)
    url = reverse("admin:autocomplete")
    query = {"app_label": model._meta.app_label, "model_name": model._meta.model_name,
             "field_name": field}  # fmt: skip
    offered, page = set(), 1
    while True:
        answer = client.get(url, {**query, "term": "", "page": page})
        assert answer.status_code == 200, answer.content[:200]
        body = answer.json()
        offered |= {int(r["id"]) for r in body["results"]}
        if not body["pagination"]["more"]:
            break
        page += 1
    assert offered and offered <= scoped, f"{model.__name__}.{field} offers {offered - scoped}"
    # Searching for a foreign object's own text finds nothing of it.
    for other in foreign[:3]:
        answer = client.get(url, {**query, "term": str(other)[:20]})
        assert other.pk not in {int(r["id"]) for r in answer.json()["results"]}
    # Not an autocomplete field, or a model without an admin: refused, not answered.
    bad = client.get(url, {**query, "field_name": "nope", "term": ""})
    assert bad.status_code == 403
