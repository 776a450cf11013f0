"""A demo-like fleet for the page tests: meters in every health and registry state."""

from __future__ import annotations

from datetime import date, timedelta

from django.utils import timezone

from meters.choices import MeterStatus
from meters.models import CommStatus, Meter


def add_meter(world, serial: str, status=MeterStatus.ACTIVE, **comm) -> Meter:
    """A meter of organisation A on its first service point, with a comm status if given."""
    grid = world.grid_a
    meter = Meter.objects.create(
        serial=serial,
        meter_model=world.meter_model,
        service_point=grid.service_points[0],
        organisation=world.org_a,
        status=status,
        host="127.0.0.1",
        port=4059,
        install_date=date(2025, 3, 1),
    )
    if comm:
        CommStatus.objects.create(meter=meter, **comm)
    return meter


def meters_in_every_state(world) -> dict[str, Meter]:
    """One or more meters of organisation A per health class, read age and registry status."""
    from meters.alarms.models import Alarm, AlarmRule

    now = timezone.now()
    a = world.grid_a.meters
    CommStatus.objects.create(meter=a[0], last_success=now - timedelta(hours=1))
    CommStatus.objects.create(meter=a[1], last_success=now - timedelta(days=2))
    made = {
        "ok": a[0],
        "stale": a[1],
        "unreachable": add_meter(
            world, "NA900001", unreachable=True, consecutive_failures=3,
            last_success=now - timedelta(days=5), last_attempt=now,
        ),
        "unreachable_never": add_meter(
            world, "NA900002", unreachable=True, consecutive_failures=4, last_attempt=now
        ),
        "never": add_meter(world, "NA900003"),
        "old": add_meter(world, "NA900004", last_success=now - timedelta(days=9)),
        "alarm": add_meter(world, "NA900005", last_success=now - timedelta(minutes=5)),
        "in_stock": add_meter(world, "NA900006", status=MeterStatus.IN_STOCK),
        "removed_unreachable": add_meter(
            world, "NA900007", status=MeterStatus.REMOVED, unreachable=True,
            last_success=now - timedelta(days=30),
        ),
        "faulty": add_meter(world, "NA900008", status=MeterStatus.FAULTY),
        "installed": add_meter(
            world, "NA900009", status=MeterStatus.INSTALLED, last_success=now
        ),
    }  # fmt: skip
    rule = AlarmRule.objects.create(name="cover", organisation=world.org_a, kinds=["cover_open"])
    Alarm.objects.create(
        rule=rule, meter=made["alarm"], organisation=world.org_a, kind="cover_open",
        severity=40, first_event_at=now, last_event_at=now,
    )  # fmt: skip
    return made
