"""DLMS invocation counters kept in the database, reserved before any frame is sent."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction
from django.db.models import F

from .models import InvocationCounter


def _reserve(key: str, n: int, initial: int) -> int:
    with transaction.atomic():
        updated = InvocationCounter.objects.filter(key=key).update(next_value=F("next_value") + n)
        if not updated:
            try:
                with transaction.atomic():
                    InvocationCounter.objects.create(key=key, next_value=initial + n)
                    return initial
            except IntegrityError:  # another worker created it first
                InvocationCounter.objects.filter(key=key).update(next_value=F("next_value") + n)
        end = InvocationCounter.objects.get(key=key).next_value
    if end > 0xFFFFFFFF:
        raise OverflowError(f"invocation counter for {key} exhausted: the meter needs new keys")
    return end - n


def _advance_to(key: str, value: int) -> None:
    with transaction.atomic():
        counter, _ = InvocationCounter.objects.select_for_update().get_or_create(
            key=key, defaults={"next_value": value}
        )
        if counter.next_value < value:
            counter.next_value = value
            counter.save(update_fields=["next_value"])


class DatabaseCounterStore:
    """`InvocationCounterStore` on the InvocationCounter table; safe across workers."""

    def __init__(self, initial: int = 1) -> None:
        self.initial = initial

    async def get(self, key: str) -> int:
        found = (
            await InvocationCounter.objects.filter(key=key)
            .values_list("next_value", flat=True)
            .afirst()
        )
        return found if found is not None else self.initial

    async def reserve(self, key: str, n: int = 1) -> int:
        if n < 1:
            raise ValueError("n must be >= 1")
        return await sync_to_async(_reserve, thread_sensitive=True)(key, n, self.initial)

    async def advance_to(self, key: str, value: int) -> None:
        await sync_to_async(_advance_to, thread_sensitive=True)(key, value)
