"""The portal's part of the demo utility (meters/demo.py, after vending's): something to show.

* **History**: the demo meters are the simulated fleet's, whose values are a pure function
  of (serial, time) (`collection.simulators.model`), so their past is known. Every simulated
  meter (customers' and check meters) gets `HISTORY_DAYS` of daily rollups before today, as
  the store would have rolled them up; each demo customer login's meters get the load
  profile itself for the last `PROFILE_MONTHS` months and their registers read at every
  month's bounds, through collection's ingest like a real read (so the day view, the TOU
  split and the bills have data). The first live read then carries on from there.
* **Bills**: the complete months of that history issued for the demo customers (as the
  monthly run would have).
* **Similar homes**: computed over that history (`portal.similar.compute`, as the hourly
  beat task keeps them), so the usage pages compare from the first sign-in.
* **Top-up**: the portal's payment identity (`AMI_PORTAL_PAYER`; `make run` names
  `DEMO_PAYER`) bound to an integration station in each region, so the sandbox checkout
  issues a real token.
* **Planned work**: a planned outage on the transformer above each demo customer, two days
  ahead, which the customer sees on the outages page and is told of by their preference.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.models import User
from accounts.roles import PAYMENT_INTEGRATION
from collection.ingest import ingest_profiles, ingest_registers
from collection.protocols.base import Channel as Column
from collection.protocols.base import ProfileBlock, ProfileRow, RegisterValue
from collection.simulators import model as sim
from meters.choices import ChannelKind
from meters.models import Channel, Customer, Meter
from meters.store import DailyEnergy
from meters.store.days import day_bounds, local_zone
from meters.store.interval_energy import energy_channels
from vending.choices import StationKind
from vending.models import VendingStation
from vending.usage import IMPORT_PROFILE

from . import bills, similar
from .customers import month_start
from .models import PlannedOutage

DEMO_PAYER = "demo-portal-payer"  # amisite/launcher.py sets AMI_PORTAL_PAYER to it
HISTORY_DAYS = 400  # a year and the same period of the year before
PROFILE_MONTHS = 13  # the bills' history of the demo customers (12 complete months)
REGISTERS = ("1-0:1.8.0*255", "1-0:2.8.0*255", "1-0:3.8.0*255", "1-0:4.8.0*255",
             "1-0:1.8.1*255", "1-0:1.8.2*255")  # fmt: skip
DEMAND = "1-0:1.6.0*255"


def _simulated(meter: Meter) -> bool:
    return meter.serial.isdigit() and (
        meter.serial in sim.CHECK_METERS or (meter.service_point_id and meter.dlms_server_address)
    )


def _k(t: datetime) -> int:
    """Intervals completed at `t` (the simulator's clock)."""
    return sim.completed_intervals(t)


def backfill_rollups(meters: list[Meter], today) -> int:
    """`HISTORY_DAYS` of daily import rollups before `today` for each simulated meter."""
    channels = {c.meter_model_id: c for c in energy_channels({m.meter_model_id for m in meters},
                                                             IMPORT_PROFILE)}  # fmt: skip
    zone = local_zone()
    rows = []
    for meter in meters:
        channel = channels.get(meter.meter_model_id)
        if channel is None:
            continue
        for back in range(1, HISTORY_DAYS + 1):
            day = today - timedelta(days=back)
            start, end = day_bounds(day, zone)
            if start < sim.EPOCH:
                continue
            wh = sim.cumulative(meter.serial, 1, _k(end)) - sim.cumulative(
                meter.serial, 1, _k(start)
            )
            rows.append(DailyEnergy(meter=meter, channel=channel, day=day, value=wh,
                                    intervals=sim.INTERVALS_PER_DAY))  # fmt: skip
    DailyEnergy.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    return len(rows)


def _profile_value(serial: str, obis: str, k: int) -> Decimal | None:
    """The profile column `obis` at interval k: per interval (x.29.0) or the register (x.8.0)."""
    c, kind = int(obis.split(":")[1].split(".")[0]), obis.split(".")[1]
    if c not in sim.CHANNELS:
        return None
    if kind == "29":
        return Decimal(sim.interval_value(serial, c, k))
    return Decimal(sim.cumulative(serial, c, k + 1))


def backfill_readings(meter: Meter, first: datetime, now: datetime) -> None:
    """The meter's load profile from `first` to `now` and its registers at each local
    month start in between (and the month's maximum demand at its end), through ingest."""
    profile = [
        c for c in Channel.objects.filter(meter_model_id=meter.meter_model_id,
                                          kind=ChannelKind.PROFILE).order_by("pk")
        if c.profile_obis
    ]  # fmt: skip
    by_profile: dict[str, list[Channel]] = {}
    for channel in profile:
        by_profile.setdefault(channel.profile_obis, []).append(channel)
    for obis, channels in by_profile.items():
        columns = tuple(Column(c.obis, c.unit) for c in channels)
        k, last = _k(first), _k(now) - 1
        while k <= last:  # a month of rows at a time
            rows = tuple(
                ProfileRow(sim.interval_end(i),
                           tuple(_profile_value(meter.serial, c.obis, i) for c in channels))
                for i in range(k, min(k + 31 * sim.INTERVALS_PER_DAY, last + 1))
            )  # fmt: skip
            ingest_profiles([(meter, ProfileBlock(obis, columns, rows, sim.INTERVAL_S))])
            k += len(rows)
    zone = local_zone()
    today = timezone.localdate(now)
    have = dict(Channel.objects.filter(meter_model_id=meter.meter_model_id)
                .values_list("obis", "unit"))  # fmt: skip
    for back in range(PROFILE_MONTHS, -1, -1):
        at = day_bounds(month_start(today, back), zone)[0]
        if at < first or at > now:
            continue
        values = [
            RegisterValue(obis, Decimal(sim.register_value(meter.serial, _sim_obis(obis), at)),
                          have[obis])
            for obis in REGISTERS if obis in have
        ]  # fmt: skip
        if DEMAND in have and back < PROFILE_MONTHS:
            watts, captured = sim.max_demand(meter.serial, at - timedelta(minutes=1))
            values.append(RegisterValue(DEMAND, Decimal(watts), "W", capture_time=captured))
        ingest_registers([(meter, at, values)])


def _sim_obis(obis: str) -> str:
    """ "1-0:1.8.0*255" -> the simulator's "1.0.1.8.0.255"."""
    group, rest = obis.split(":")
    code, f = rest.split("*")
    return f"{group.replace('-', '.')}.{code}.{f}"


def add_payer(demo) -> User:
    """The portal's payment identity, at an integration station of each region."""
    name = settings.AMI_PORTAL_PAYER or DEMO_PAYER
    payer = User.objects.create_user(name, password=None, organisation=demo.utility)
    payer.groups.set(Group.objects.filter(name=PAYMENT_INTEGRATION))
    for code, org in demo.regions.items():
        station = VendingStation.objects.create(
            organisation=org, code=f"{code.upper()}-PORTAL", name=f"{org.name} portal top-up",
            kind=StationKind.INTEGRATION, location="the customer portal's payments (sandbox)",
        )  # fmt: skip
        station.clerks.add(payer)
    return payer


def plan_work(customer: Customer, now: datetime) -> PlannedOutage:
    """Planned work on the transformer above the customer, the day after tomorrow."""
    transformer = customer.service_point.parent
    day = timezone.localdate(now) + timedelta(days=2)
    starts = datetime.combine(day, time(9), tzinfo=local_zone())
    return PlannedOutage.objects.create(
        node=transformer, starts_at=starts, ends_at=starts + timedelta(hours=4),
        reason=f"Maintenance of transformer {transformer.code}: supply off while it is serviced.",
    )  # fmt: skip


def load_demo_portal(demo) -> None:
    now = timezone.now()
    today = timezone.localdate(now)
    logins = list(
        Customer.objects.filter(portal_user__isnull=False)
        .select_related("service_point__parent")
        .order_by("pk")
    )
    homes = {c.service_point_id for c in logins}
    simulated = [m for m in Meter.objects.order_by("pk") if _simulated(m)]
    backfill_rollups(simulated, today)  # the logins' meters: ingest below rolls up the same
    first = day_bounds(month_start(today, PROFILE_MONTHS - 1), local_zone())[0]
    for meter in simulated:
        if meter.service_point_id in homes:
            backfill_readings(meter, max(first, sim.EPOCH), now)
    for customer in logins:
        for back in range(PROFILE_MONTHS - 1, 0, -1):
            month = f"{month_start(today, back):%Y-%m}"
            if today >= bills.issues_on(month):
                bills.issue(customer, month, now)
        plan_work(customer, now)
    similar.compute(today)  # what the beat task keeps up: the usage pages' similar homes
    add_payer(demo)
