"""The bridge between accounts and the STS token engine: keys, TIDs, token generation.

Vending keys are decrypted here and only here, turned into the meter's decoder key and
dropped; they never leave this module (not in return values, errors, logs or audit rows).

TID allocation (per meter, under the account's row lock): a token's TID is the minute of
issue counted from the key's base date, but two tokens to one meter must never share a
TID (the meter refuses the second). When a sale lands in the same minute as the previous
token (or the clock went back), the next free minute is used::

    tid = max(minutes_since_base_date(now), last_tid + 1)

so TIDs strictly increase per meter; a burst of sales runs a few minutes "ahead" and
real time catches up. The unique constraint (meter, base_date, tid) on Token is the
backstop if a caller ever skips the lock.
"""

from __future__ import annotations

from datetime import datetime

from .choices import KeyDerivation
from .errors import VendingUnavailable
from .models import PrepaidAccount, VendingKey
from .sts.dkga import dkga02, dkga04
from .sts.errors import StsError
from .sts.pan import MeterPan
from .sts.tid import TID_MAX, tid_from_datetime
from .sts.tokens import DecoderKey


def _vending_key(account: PrepaidAccount, sgc: int, krn: int) -> bytes:
    # A key may be held by the account's organisation or any organisation above it.
    ancestors = [int(pk) for pk in account.organisation.path.strip("/").split("/") if pk]
    row = (
        VendingKey.objects.filter(organisation_id__in=ancestors, sgc=sgc, krn=krn)
        .order_by("-organisation__path")
        .only("key")
        .first()
    )
    if row is None:
        raise VendingUnavailable(
            f"no vending key is loaded for supply group {sgc:06d} key revision {krn}; "
            "ask the key custodian to load it"
        )
    try:
        return bytes.fromhex(str(row.key).replace(" ", ""))
    except ValueError:
        raise VendingUnavailable(f"the vending key for SGC {sgc:06d} KRN {krn} is malformed")


def decoder_key(
    account: PrepaidAccount,
    *,
    sgc: int | None = None,
    krn: int | None = None,
    ti: int | None = None,
    base_date: int | None = None,
) -> DecoderKey:
    """The meter's decoder key for its current parameters (or the given new ones)."""
    sgc = account.sgc if sgc is None else sgc
    krn = account.krn if krn is None else krn
    ti = account.ti if ti is None else ti
    base_date = account.base_date if base_date is None else base_date
    vending_key = _vending_key(account, sgc, krn)
    try:
        pan = MeterPan.parse(account.meter_number)
        if account.dkga == KeyDerivation.DKGA02:
            raw = dkga02(vending_key, pan, sgc=sgc, ti=ti, krn=krn, key_type=account.key_type)
        else:
            raw = dkga04(
                vending_key, pan, sgc=sgc, ti=ti, krn=krn, key_type=account.key_type,
                base_date=base_date, ea=account.ea,
            )  # fmt: skip
        return DecoderKey(raw, account.ea)
    except StsError as exc:
        # The engine's messages name parameters and lengths, never key material.
        raise VendingUnavailable(f"cannot derive the meter's decoder key: {exc}") from None


def allocate_tid(account: PrepaidAccount, now: datetime) -> int:
    """Next TID for the meter; the caller holds `select_for_update` on the account row."""
    try:
        current = tid_from_datetime(now, account.base_date)
    except StsError as exc:
        raise VendingUnavailable(str(exc)) from None
    tid = max(current, account.last_tid + 1)
    if tid > TID_MAX:
        raise VendingUnavailable("the meter's TID range is exhausted: a key change is needed")
    PrepaidAccount.objects.filter(pk=account.pk).update(last_tid=tid)
    account.last_tid = tid
    return tid


def locked_account(account_id: int) -> PrepaidAccount:
    """The account row, locked until the end of the transaction (TIDs, debt, fixed charge)."""
    return (
        PrepaidAccount.objects.select_for_update(of=("self",))
        .select_related("organisation", "tariff", "meter")
        .get(pk=account_id)
    )
