"""The portal's part of the demo utility (meters/demo.py, after vending's): something to show.

* **History**: the demo meters are the simulated fleet's, whose values are a pure function
  of (serial, time) (`collection.simulators.model`), so their past is known, and the demo
  holds what a head-end reading them for a year would (`backfill_history`), all of it
  through collection's ingest like a real read:
  - every simulated meter (customers' and check meters): `HISTORY_DAYS` of daily import
    rollups before today, as the store would have rolled them up (the other energy
    channels' from last month on, which billing sums), and the load profile itself for the
    last `RECENT_DAYS` days, so the first live read carries on from its last interval;
  - each demo customer login's meters: the load profile for the last `PROFILE_MONTHS`
    months (the day view, the TOU split) and the registers at every month's bounds (bills);
  - every other meter, the shared lines' too: the registers at last month's bounds, so last
    month's billing determinants are real bills;
  - the fleet's communication-lost meter (its simulator never answers) fell silent on day
    `SILENT_DAY` of last month: nothing after, so last month's billing holds it back.
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

from bisect import bisect_left
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
from collection.simulators.incidents import DEMO_ROLES
from meters.choices import ChannelKind, Protocol
from meters.demo import SIM_FIRST_SERIAL
from meters.models import Channel, Customer, Meter
from meters.store import DailyEnergy
from meters.store.days import day_bounds, local_zone
from meters.store.interval_energy import energy_channels, is_cumulative
from vending.choices import StationKind
from vending.models import VendingStation

from . import bills, similar
from .customers import month_start
from .models import PlannedOutage

DEMO_PAYER = "demo-portal-payer"  # amisite/launcher.py sets AMI_PORTAL_PAYER to it
HISTORY_DAYS = 400  # a year and the same period of the year before
PROFILE_MONTHS = 13  # the bills' history of the demo customers (12 complete months)
ENERGY_PROFILES = ("1-0:1.29.0*255", "1-0:2.29.0*255", "1-0:3.29.0*255", "1-0:4.29.0*255")
ENERGY_REGISTERS = {1: "1-0:1.8.0*255", 2: "1-0:2.8.0*255", 3: "1-0:3.8.0*255", 4: "1-0:4.8.0*255"}
TARIFF_REGISTERS = ("1-0:1.8.1*255", "1-0:1.8.2*255")  # T1, T2 (sim.tariff_registers)
TARIFFS = frozenset(TARIFF_REGISTERS)
DEMAND = "1-0:1.6.0*255"
# The last RECENT_DAYS whole days and today have the load profile itself for every simulated
# meter, so the first live read carries on from its last interval (a read job reads back
# `backfill_days`, 7 by default, only when the store has nothing newer).
RECENT_DAYS = 8
# The fleet's communication-lost meter (the `timeout` role of incidents.DEMO_ROLES): its
# history stops at local midnight on this day of last month, so last month's billing holds
# it back (no end read, a third of the intervals missing) as it would a real silent meter.
SILENT = frozenset(
    str(SIM_FIRST_SERIAL + role.index) for role in DEMO_ROLES if role.fault == "timeout"
)
SILENT_DAY = 20


def _simulated(meter: Meter) -> bool:
    return meter.serial.isdigit() and (
        meter.serial in sim.CHECK_METERS or (meter.service_point_id and meter.dlms_server_address)
    )


def _on_a_line(meter: Meter) -> bool:
    """The shared lines' meters (Modbus, IEC 62056-21): registers of the same value model."""
    return meter.serial.isdigit() and meter.protocol != Protocol.DLMS


def _k(t: datetime) -> int:
    """Intervals completed at `t` (the simulator's clock)."""
    return sim.completed_intervals(t)


def silent_since(meter: Meter, today) -> datetime | None:
    """When the fleet's communication-lost meter (its simulator never answers) last answered:
    `SILENT_DAY` of last month at local midnight; None for the others."""
    if meter.serial not in SILENT:
        return None
    return day_bounds(month_start(today, 1) + timedelta(days=SILENT_DAY - 1), local_zone())[0]


def backfill_rollups(meters: list[Meter], today, silent: dict) -> int:
    """Daily rollups before `today` of each simulated meter's energy profile channels, up to
    the day it fell silent: `HISTORY_DAYS` of import (the portal's year), the others (export,
    both reactive) from last month on (its billing determinants)."""
    model_ids = {m.meter_model_id for m in meters}
    channels: dict[int, list[tuple[Channel, int]]] = {}  # model -> (channel, sim channel)
    for quantity in ENERGY_PROFILES:
        for channel in energy_channels(model_ids, quantity):
            number = int(quantity[4])  # the simulator's channel: C of the OBIS code
            channels.setdefault(channel.meter_model_id, []).append((channel, number))
    zone = local_zone()
    days = [
        day for back in range(HISTORY_DAYS, 0, -1)
        if day_bounds(day := today - timedelta(days=back), zone)[0] >= sim.EPOCH
    ]  # fmt: skip
    if not days:
        return 0
    # The register at each day's bounds: day i runs from ks[i] to ks[i + 1] intervals.
    ks = [_k(day_bounds(day, zone)[0]) for day in days] + [_k(day_bounds(days[-1], zone)[1])]
    first_billed = bisect_left(days, month_start(today, 1))
    rows = []
    for meter in meters:
        stop = silent.get(meter.pk)
        last = len(days) if stop is None else min(bisect_left(ks, _k(stop)), len(days))
        for channel, number in channels.get(meter.meter_model_id, ()):
            begin = 0 if number == 1 else first_billed
            counts = sim.cumulatives(meter.serial, number, ks[begin : last + 1])
            rows += [
                DailyEnergy(meter=meter, channel=channel, day=days[begin + i],
                            value=counts[i + 1] - counts[i], intervals=sim.INTERVALS_PER_DAY)
                for i in range(last - begin)
            ]  # fmt: skip
    DailyEnergy.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    return len(rows)


def _profile_columns(serial: str, channels: list[Channel], ks: range) -> list[list]:
    """Each profile column at intervals `ks`: per interval (x.29.0) or the register (x.8.0),
    from the simulator's register at each interval's bounds."""
    out = []
    for channel in channels:
        c, d = int(channel.obis.split(":")[1].split(".")[0]), channel.obis.split(".")[1]
        if c not in sim.CHANNELS:
            out.append([None] * len(ks))
            continue
        counts = sim.cumulatives(serial, c, range(ks.start, ks.stop + 1))
        out.append(
            [Decimal(counts[i + 1] - counts[i]) if d == "29" else Decimal(counts[i + 1])
             for i in range(len(ks))]
        )  # fmt: skip
    return out


def backfill_profiles(meters: list[Meter], first: datetime, now: datetime) -> None:
    """The meters' load profiles from `first` to `now`, through ingest like a read (a month
    of rows per block, every meter's blocks of a month in one ingest)."""
    profiles: dict[int, dict[str, list[Channel]]] = {}  # model -> profile OBIS -> channels
    for channel in Channel.objects.filter(
        meter_model_id__in={m.meter_model_id for m in meters}, kind=ChannelKind.PROFILE
    ).order_by("pk"):
        if channel.profile_obis:
            by_profile = profiles.setdefault(channel.meter_model_id, {})
            by_profile.setdefault(channel.profile_obis, []).append(channel)
    k, last = _k(first), _k(now) - 1
    while k <= last:  # a month of rows at a time
        upto = min(k + 31 * sim.INTERVALS_PER_DAY, last + 1)
        blocks = []
        for meter in meters:
            for obis, channels in profiles.get(meter.meter_model_id, {}).items():
                columns = tuple(Column(c.obis, c.unit) for c in channels)
                # A cumulative profile's first interval is the difference from the capture
                # before it: that capture (at `first`, the day before's last) comes too.
                lead = 1 if k == _k(first) and all(is_cumulative(c) for c in channels) else 0
                ks = range(k - lead, upto)
                values = zip(*_profile_columns(meter.serial, channels, ks), strict=True)
                rows = tuple(
                    ProfileRow(sim.interval_end(i), row) for i, row in zip(ks, values, strict=True)
                )
                blocks.append((meter, ProfileBlock(obis, columns, rows, sim.INTERVAL_S)))
        ingest_profiles(blocks)
        k = upto


def backfill_registers(meters: list[Meter], bounds: list[datetime], until: dict) -> int:
    """Each meter's registers read at the `bounds` (local month starts) up to its `until`
    (now, or when it fell silent) -- the energy registers with their tariffs, and the
    maximum demand of the month just ended -- through ingest like a read."""
    have: dict[int, dict[str, str]] = {}
    for model_id, obis, unit in Channel.objects.filter(
        meter_model_id__in={m.meter_model_id for m in meters}, kind=ChannelKind.REGISTER
    ).values_list("meter_model_id", "obis", "unit"):
        have.setdefault(model_id, {})[obis] = unit
    reads = []
    for meter in meters:
        reached = [at for at in bounds if at <= until[meter.pk]]
        units = have.get(meter.meter_model_id, {})
        tariffs = sim.tariff_registers(meter.serial, reached) if TARIFFS & units.keys() else []
        for i, at in enumerate(reached):
            values = [
                RegisterValue(obis, Decimal(sim.energy_register(meter.serial, channel, at)),
                              units[obis])
                for channel, obis in ENERGY_REGISTERS.items() if obis in units
            ]  # fmt: skip
            values += [
                RegisterValue(obis, Decimal(tariffs[i][n]), units[obis])
                for n, obis in enumerate(TARIFF_REGISTERS) if obis in units
            ]  # fmt: skip
            if DEMAND in units:
                watts, captured = sim.max_demand(meter.serial, at - timedelta(minutes=1))
                values.append(RegisterValue(DEMAND, Decimal(watts), "W", capture_time=captured))
            reads.append((meter, at, values))
    ingest_registers(reads)
    return len(reads)


def backfill_history(now: datetime, logins: set[int]) -> None:
    """The fleet's past as the head-end would hold it after a year of reading (see the
    module's docstring): rollups, the recent load profile (all of it for the customer logins'
    meters), registers at the month bounds; nothing after the silent meter fell silent."""
    today = timezone.localdate(now)
    meters = list(Meter.objects.order_by("pk"))
    simulated = [m for m in meters if _simulated(m)]
    silent = {m.pk: at for m in simulated if (at := silent_since(m, today)) is not None}
    backfill_rollups(simulated, today, silent)  # the logins' meters: ingest rolls up the same
    zone = local_zone()
    history = max(day_bounds(month_start(today, PROFILE_MONTHS - 1), zone)[0], sim.EPOCH)
    recent = day_bounds(today - timedelta(days=RECENT_DAYS), zone)[0]
    fleet = [m for m in simulated if m.pk not in silent]
    backfill_profiles([m for m in fleet if m.service_point_id in logins], history, recent)
    backfill_profiles(fleet, recent, now)
    bounds = [
        at for back in range(PROFILE_MONTHS - 1, -1, -1)
        if (at := day_bounds(month_start(today, back), zone)[0]) >= sim.EPOCH
    ]  # fmt: skip
    # Registers at every month's bounds for the logins' meters (their bills), at last
    # month's for the rest of the fleet (its billing determinants: a maximum demand costs
    # the simulator a month of intervals per bound).
    homes = {m.pk for m in simulated if m.service_point_id in logins}
    billed = simulated + [m for m in meters if _on_a_line(m)]
    until = {m.pk: silent.get(m.pk, now) for m in billed}
    backfill_registers([m for m in billed if m.pk in homes], bounds, until)
    backfill_registers([m for m in billed if m.pk not in homes], bounds[-2:], until)


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
    backfill_history(now, {c.service_point_id for c in logins})
    for customer in logins:
        for back in range(PROFILE_MONTHS - 1, 0, -1):
            month = f"{month_start(today, back):%Y-%m}"
            if today >= bills.issues_on(month):
                bills.issue(customer, month, now)
        plan_work(customer, now)
    similar.compute(today)  # what the beat task keeps up: the usage pages' similar homes
    add_payer(demo)
