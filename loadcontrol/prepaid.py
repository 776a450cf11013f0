"""The prepaid link: an account out of credit is disconnected, a topped-up one reconnected,
when the utility configures it so (`AMI_PREPAID_RELAY`, off by default: an STS meter enforces
its own credit; this is for utilities that want the head-end to act on what it reads).

The head-end's view of the credit: kWh of the account's completed sales minus the kWh its meter
registered since the first of them (vending/usage.py, from AMI readings). No readings: nothing
is decided. Disconnects and reconnects are meter commands with origin `prepaid:<account>`; a
top-up reconnects only a meter whose last switching command was that prepaid disconnect, so an
operator's own disconnect (tampering, say) is never undone by a payment. While a prepaid
command of the meter is still queued or sent, nothing more is queued.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from collection.commands import actions as commands
from collection.commands.kinds import EXPECTED_RELAY
from collection.models import CommandState, MeterCommand
from meters.choices import RELAY_OPEN
from meters.models import CommStatus
from vending import usage
from vending.models import PrepaidAccount


def origin_of(account: PrepaidAccount) -> str:
    return f"prepaid:{account.pk}"


def remaining_kwh(account: PrepaidAccount, now) -> Decimal | None:
    """kWh bought minus kWh registered since the first sale; None without sales or readings
    (vending/usage.py, which also estimates how long it lasts)."""
    return usage.remaining_kwh(account, now)


def check_account(account: PrepaidAccount, now=None) -> str | None:
    """Queue what the account's credit asks of its meter: "disconnect", "connect" or None."""
    if not settings.AMI_PREPAID_RELAY:
        return None
    now = now or timezone.now()
    meter = account.meter
    origin = origin_of(account)
    relay = MeterCommand.objects.filter(meter=meter, kind__in=list(EXPECTED_RELAY))
    if relay.filter(origin=origin, state__in=(CommandState.QUEUED, CommandState.SENT)).exists():
        return None  # already on its way
    remaining = remaining_kwh(account, now)
    if remaining is None:
        return None
    state = CommStatus.objects.filter(meter=meter).values_list("relay_state", flat=True).first()
    is_open = state in RELAY_OPEN
    if remaining <= 0 and not is_open:
        kind, reason = "disconnect", f"prepaid credit used up ({remaining} kWh)"
    elif remaining > 0 and is_open:
        last = relay.filter(state=CommandState.CONFIRMED).order_by("-finished_at", "-id").first()
        if last is None or last.origin != origin or last.kind != "disconnect":
            return None  # off for another reason: a payment does not undo it
        kind, reason = "connect", f"prepaid credit topped up ({remaining} kWh left)"
    else:
        return None
    commands.queue_commands(
        [meter], kind, acting_user=None, reason=reason, origin=origin, max_attempts=3
    )
    return kind


def enforce(now=None) -> dict:
    """Every account with a meter read remotely (beat): what `check_account` queued."""
    done = {"disconnect": 0, "connect": 0}
    if not settings.AMI_PREPAID_RELAY:
        return done
    accounts = PrepaidAccount.objects.select_related("meter__organisation").order_by("pk")
    for account in accounts.iterator(chunk_size=500):
        kind = check_account(account, now)
        if kind:
            done[kind] += 1
    return done
