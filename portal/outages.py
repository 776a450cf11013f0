"""Outages a customer sees: now at home or nearby (the alarms' outage grouping), planned
work on the grid above the home, an estimate of restoration, and how to be told.

* **Now**: open power failures at the customer's service point or on its transformer
  (`portal.customers.current_outage`), as the operators' outage page groups them.
* **Estimated restoration**: the planned end when planned work covers the home; else the
  start plus the median length of this transformer's power failures cleared in the last
  `HISTORY_DAYS` days (at least `MIN_HISTORY` of them), else the start plus
  `AMI_PORTAL_DEFAULT_RESTORATION_MINUTES` (120). Always labelled an estimate.
* **Planned**: `PlannedOutage` rows on any node above the service point, not yet ended.
* **How to be told**: `OutagePreference` (SMS, e-mail, planned work, quiet hours in the
  utility's zone). `contacts` is the slot `AMI_CUSTOMER_CONTACTS` names for the alarms'
  customer notifications (meters/alarms/notifications.py calls it by name; meters imports
  nothing of the portal).
* **Told of planned work**: `notify_planned` (the beat task `portal.notify_planned_work`,
  every 15 minutes) tells each customer below a planned outage that has not started, by
  their preference, once per channel and revision (`PlannedOutageNotice`). A customer in
  their quiet hours is not told now but by the first run after them (if the work has not
  started by then); one who wants no word of planned work is never told. A send that fails
  is tried again by the next runs, `NOTICE_ATTEMPTS` times in all.
* **Told again of a change**: moving the work's times, moving it to another node or
  cancelling it is a new revision (`PlannedOutage.save`; the reason's wording is not). The
  next run tells, once per channel, by the same preferences and quiet hours: the customers
  told of an earlier revision that it cuts them (now: the new times; or that it no longer
  cuts their address; or that it is cancelled) and those below the new node not told so
  yet (a first notice). `PlannedOutageNotice.news` says which.
  Notices of an earlier revision not yet sent are superseded, never sent.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from statistics import median

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from meters.alarms import sms
from meters.alarms.events import EventKind
from meters.alarms.models import Alarm
from meters.models import Customer
from meters.store.days import local_zone

from .customers import Outage, current_outage
from .models import NoticeState, OutagePreference, PlannedOutage, PlannedOutageNotice

HISTORY_DAYS, MIN_HISTORY = 90, 3
EMAIL, SMS = "email", "sms"
NOTICE_ATTEMPTS = 3
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Now:
    outage: Outage
    restoration: datetime
    basis: str  # how the restoration was estimated, for the customer


def planned(customer: Customer, now: datetime | None = None):
    """Planned work above the customer's service point that has not ended, soonest first."""
    now = now or timezone.now()
    ids = [int(p) for p in customer.service_point.path.strip("/").split("/") if p]
    return PlannedOutage.objects.filter(node_id__in=ids, ends_at__gt=now, cancelled=False).order_by(
        "starts_at"
    )


def restoration(customer: Customer, since: datetime, now: datetime | None = None):
    """(estimated restoration, basis) of an outage at the customer's that began `since`."""
    now = now or timezone.now()
    work = planned(customer, now).filter(starts_at__lte=now).first()
    if work is not None:
        return work.ends_at, "the planned end of the work"
    point = customer.service_point
    nearby = Alarm.objects.filter(
        kind=EventKind.POWER_FAILURE,
        cleared_at__isnull=False,
        first_event_at__gte=now - timedelta(days=HISTORY_DAYS),
    )
    nearby = (
        nearby.filter(service_point__parent_id=point.parent_id)
        if point.parent_id
        else nearby.filter(service_point_id=point.pk)
    )
    lengths = [
        (cleared - first).total_seconds()
        for first, cleared in nearby.values_list("first_event_at", "cleared_at")[:500]
        if cleared > first
    ]
    if len(lengths) >= MIN_HISTORY:
        return since + timedelta(seconds=median(lengths)), (
            f"the usual length of the last {len(lengths)} outages here"
        )
    minutes = getattr(settings, "AMI_PORTAL_DEFAULT_RESTORATION_MINUTES", 120)
    return since + timedelta(minutes=minutes), "a typical outage's length"


def now_at(customer: Customer) -> Now | None:
    outage = current_outage(customer)
    if outage is None:
        return None
    when, basis = restoration(customer, outage.since)
    return Now(outage, when, basis)


def preference_of(customer: Customer) -> OutagePreference:
    """The customer's preference (an unsaved default where none is stored)."""
    found = OutagePreference.objects.filter(customer=customer).first()
    return found or OutagePreference(customer=customer)


def contacts(customers, *, now: datetime, planned_work: bool = False) -> dict[int, list]:
    """{customer id: [(channel, recipient)]} to tell now, by each one's preference."""
    customers = list(customers)
    prefs = {p.customer_id: p for p in OutagePreference.objects.filter(customer__in=customers)}
    local = now.astimezone(local_zone()).time()
    out = {}
    for customer in customers:
        pref = prefs.get(customer.pk) or OutagePreference(customer=customer)
        if pref.quiet_at(local) or (planned_work and not pref.planned):
            out[customer.pk] = []
            continue
        email = (customer.portal_user.email if customer.portal_user_id else "") or customer.email
        out[customer.pk] = [
            (channel, recipient)
            for channel, recipient, wanted in (
                (EMAIL, email, pref.by_email),
                (SMS, customer.phone, pref.by_sms),
            )
            if wanted and recipient
        ]
    return out


FIRST, CHANGED, AWAY, CANCELLED = "first", "changed", "away", "cancelled"


def notice_text(work: PlannedOutage, customer: Customer, news: str = FIRST) -> str:
    """What the customer is told: of the work (FIRST), that it changed (CHANGED: the new
    times), that it no longer reaches their address (AWAY) or that it is cancelled."""
    zone = local_zone()
    start, end = work.starts_at.astimezone(zone), work.ends_at.astimezone(zone)
    until = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%a %d %b %H:%M}"
    where = customer.service_point.address or customer.service_point.code
    if news == CANCELLED:
        return f"Planned power cut at {where} on {start:%a %d %b} is CANCELLED: no cut."
    if news == AWAY:
        return (
            f"Planned power cut at {where}: the work has changed and no longer cuts this address."
        )
    changed = " CHANGED, now" if news == CHANGED else ""
    return (
        f"Planned power cut at {where}{changed}: {start:%a %d %b %H:%M} to {until}. {work.reason}"
    )


def notify_planned(now: datetime | None = None) -> int:
    """Tell the customers of planned work not yet started (see the module's docstring);
    returns how many messages were sent."""
    now = now or timezone.now()
    for work in PlannedOutage.objects.filter(starts_at__gt=now).select_related("node"):
        notices = PlannedOutageNotice.objects.filter(planned_outage=work)
        # Notices of an earlier revision not sent yet would tell what no longer holds.
        notices.filter(revision__lt=work.revision, state=NoticeState.PENDING).update(
            state=NoticeState.SUPERSEDED
        )
        told_before = notices.filter(revision__lt=work.revision, state=NoticeState.SENT)
        reached = Q(pk__in=told_before.values("customer_id"))
        if not work.cancelled:
            reached |= Q(service_point__path__startswith=work.node.path)
        # Those told of this revision on any channel are done; the unique key is the
        # backstop for two runs at once.
        untold = (
            Customer.objects.filter(reached)
            .exclude(pk__in=notices.filter(revision=work.revision).values("customer_id"))
            .select_related("service_point", "portal_user")
            .order_by("pk")
        )
        rows_of = untold.iterator(chunk_size=1000)
        while chunk := list(islice(rows_of, 1000)):
            wanted = contacts(chunk, now=now, planned_work=True)
            latest = dict(  # the news of each one's latest notice sent, oldest first
                told_before.filter(customer__in=chunk)
                .order_by("revision")
                .values_list("customer_id", "news")
            )
            rows = []
            for customer in chunk:
                below = not work.cancelled and customer.service_point.path.startswith(
                    work.node.path
                )
                affected_before = latest.get(customer.pk) not in (None, AWAY)
                if below:
                    news = CHANGED if affected_before else FIRST
                elif affected_before:
                    news = CANCELLED if work.cancelled else AWAY
                else:
                    continue  # told it no longer cuts them, and it still does not
                rows += [
                    PlannedOutageNotice(
                        planned_outage=work,
                        customer=customer,
                        channel=channel,
                        revision=work.revision,
                        news=news,
                        recipient=recipient,
                        created_at=now,
                        body=notice_text(work, customer, news)[: 160 if channel == SMS else None],
                    )  # fmt: skip
                    for channel, recipient in wanted[customer.pk]
                ]
            PlannedOutageNotice.objects.bulk_create(rows, ignore_conflicts=True)
    return send_notices(now)


def send_notices(now: datetime) -> int:
    """Send every pending notice of work not yet started, each once (row locked)."""
    sent = 0
    pending = PlannedOutageNotice.objects.filter(
        state=NoticeState.PENDING,
        planned_outage__starts_at__gt=now,
        revision=F("planned_outage__revision"),  # older ones are superseded
    ).values_list("pk", flat=True)
    for pk in list(pending):
        with transaction.atomic():
            notice = (
                PlannedOutageNotice.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, state=NoticeState.PENDING, revision=F("planned_outage__revision"))
                .first()
            )
            if notice is None:
                continue  # another run has it
            notice.attempts += 1
            try:
                if notice.channel == SMS:
                    sms.get_backend().send(notice.recipient, notice.body)
                else:
                    send_mail(_subject(notice.body), notice.body, settings.DEFAULT_FROM_EMAIL,
                              [notice.recipient])  # fmt: skip
            except (sms.SmsError, smtplib.SMTPException, OSError) as exc:
                log.warning("planned outage notice %s not sent: %s", notice.pk, type(exc).__name__)
                notice.last_error = f"{type(exc).__name__}: {exc}"[:300]
                if notice.attempts >= NOTICE_ATTEMPTS:
                    notice.state = NoticeState.FAILED
            else:
                notice.state, notice.sent_at, notice.last_error = NoticeState.SENT, now, ""
                sent += 1
            notice.save(update_fields=["attempts", "state", "sent_at", "last_error"])
    return sent


def _subject(body: str) -> str:
    if "CANCELLED" in body:
        return "Planned power cut cancelled"
    if "CHANGED" in body or "no longer cuts" in body:
        return "Planned power cut changed"
    return "Planned power cut"
