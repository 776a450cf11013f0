"""Celery tasks of load control: thin wrappers around its actions."""

from __future__ import annotations

from celery import shared_task

from vending.models import PrepaidAccount

from . import prepaid, schedules


@shared_task(name="loadcontrol.run_schedules")
def run_schedules_task() -> dict:
    """Each minute (beat): plan, switch off due slots, restore ended ones, each once."""
    return schedules.run()


@shared_task(name="loadcontrol.prepaid_check")
def prepaid_check_task(account_id: int | None = None) -> dict:
    """One account after a sale (vending queues it by name), or every account (beat)."""
    if account_id is None:
        return prepaid.enforce()
    account = PrepaidAccount.objects.select_related("meter__organisation").filter(pk=account_id)
    found = account.first()
    return {"queued": prepaid.check_account(found) if found else None}
