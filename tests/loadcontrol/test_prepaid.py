"""The prepaid link: out of credit -> disconnect, topped up -> reconnect, only when the utility
configures it (AMI_PREPAID_RELAY), never undoing an operator's own disconnect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import TestCase
from django.utils import timezone

from collection.ingest import ingest_profiles
from collection.models import CommandState, MeterCommand
from collection.protocols.base import Channel as ProfileChannel
from collection.protocols.base import ProfileBlock, ProfileRow
from loadcontrol import prepaid
from meters.models import CommStatus
from tests.vending.conftest import make_vending
from vending import actions as vending_actions

pytestmark = pytest.mark.django_db

SOLD = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def _use(meter, wh_per_interval: int, days: int) -> None:
    per_interval = Decimal(wh_per_interval)
    start = SOLD.replace(hour=0)
    rows = tuple(
        ProfileRow(start + timedelta(minutes=15 * (i + 1)), (per_interval, Decimal(0)))
        for i in range(96 * days)
    )
    channels = (ProfileChannel("1-0:1.29.0*255", "Wh"), ProfileChannel("1-0:2.29.0*255", "Wh"))
    ingest_profiles([(meter, ProfileBlock("1-0:99.1.0*255", channels, rows, 900))])


def _confirm(command, relay: str) -> None:
    MeterCommand.objects.filter(pk=command.pk).update(
        state=CommandState.CONFIRMED, finished_at=timezone.now()
    )
    CommStatus.objects.update_or_create(meter=command.meter, defaults={"relay_state": relay})


def test_out_of_credit_disconnects_and_a_top_up_reconnects(world, settings, monkeypatch):
    settings.AMI_PREPAID_RELAY = True
    vend = make_vending(world)
    account, meter = vend.account_a, vend.account_a.meter
    shift = vending_actions.open_shift(vend.station_a, acting_user=vend.clerk_a)
    sale = vending_actions.sell(
        account, Decimal("20.00"), acting_user=vend.clerk_a, shift=shift, now=SOLD
    )
    now = SOLD + timedelta(days=3)
    assert prepaid.check_account(account, now) is None  # no readings: nothing decided
    _use(meter, wh_per_interval=int(sale.energy_kwh * 1000 / 96) + 10, days=2)
    assert prepaid.remaining_kwh(account, now) < 0
    assert prepaid.check_account(account, now) == "disconnect"
    assert prepaid.check_account(account, now) is None  # on its way already
    (off,) = MeterCommand.objects.filter(origin=prepaid.origin_of(account))
    assert off.kind == "disconnect" and "credit used up" in off.reason
    _confirm(off, "disconnected")
    assert prepaid.check_account(account, now) is None  # off, still no credit
    checked = []
    monkeypatch.setattr(vending_actions, "enqueue_prepaid_check", checked.append)
    with TestCase.captureOnCommitCallbacks(execute=True):
        vending_actions.sell(
            account, Decimal("500.00"), acting_user=vend.clerk_a, shift=shift, now=now
        )
    assert checked == [account.pk]  # the sale asks load control to look again
    assert prepaid.check_account(account, now) == "connect"
    on = MeterCommand.objects.get(kind="connect")
    assert on.origin == prepaid.origin_of(account) and "topped up" in on.reason


def test_an_operators_disconnect_is_not_undone_and_the_link_can_be_off(world, settings):
    vend = make_vending(world)
    account, meter = vend.account_a, vend.account_a.meter
    shift = vending_actions.open_shift(vend.station_a, acting_user=vend.clerk_a)
    vending_actions.sell(account, Decimal("50.00"), acting_user=vend.clerk_a, shift=shift, now=SOLD)
    _use(meter, wh_per_interval=10, days=1)
    now = SOLD + timedelta(days=2)
    assert prepaid.remaining_kwh(account, now) > 0
    settings.AMI_PREPAID_RELAY = False
    CommStatus.objects.create(meter=meter, relay_state="connected")
    assert prepaid.check_account(account, now) is None and prepaid.enforce(now) == {
        "disconnect": 0,
        "connect": 0,
    }
    settings.AMI_PREPAID_RELAY = True
    tamper = MeterCommand.objects.create(
        organisation=meter.organisation, meter=meter, kind="disconnect", reason="tampering",
        expires_at=now, requested_by=world.operator_a,
    )  # fmt: skip
    _confirm(tamper, "disconnected")
    assert prepaid.check_account(account, now) is None  # credit left, but not ours to undo
    assert prepaid.enforce(now) == {"disconnect": 0, "connect": 0}
