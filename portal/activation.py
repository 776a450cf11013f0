"""Activating a portal login: proving to be the customer, then creating the login.

A customer proves it with one of two things only the customer has:

* the **account number and the code printed on the bill**: `bill_code(customer, month)`,
  an HMAC of the customer and the bill's month under the site's secret (nothing stored;
  the codes of the last `BILL_CODE_MONTHS` months are accepted, so last month's bill works
  until the next one arrives);
* the **meter serial (or the prepaid meter number) and the amount of the last payment**:
  the newest completed purchase on the prepaid account of that meter.

Either way a customer whose login exists already is refused (one login per customer).
`activate` creates the user in the customer role, links it to the customer record and
keeps the address to confirm (`portal.models.PortalLogin`), in one transaction.
E-mail confirmation and password reset links are signed, time-limited and bound to what
they confirm (the address; the password hash), so a used reset link cannot be reused.
"""

from __future__ import annotations

import base64
from datetime import date
from decimal import Decimal, InvalidOperation

from django.contrib.auth.models import Group
from django.core import signing
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from accounts import audit, roles
from accounts.models import User
from meters.models import Customer
from vending.choices import SaleStatus
from vending.models import PrepaidAccount, Sale

from .models import PortalLogin

BILL_CODE_MONTHS = 3
EMAIL_SALT = "ami-portal-email"
EMAIL_MAX_AGE = 3 * 24 * 3600
BY_BILL, BY_PAYMENT = "bill code", "payment"


class ActivationError(Exception):
    """Why a login could not be created (the message is for the customer)."""


def _month_index(day: date, back: int) -> str:
    index = day.year * 12 + day.month - 1 - back
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def bill_code(customer: Customer, month: str) -> str:
    """The activation code printed on `customer`'s bill of `month` ("YYYY-MM"): XXXX-XXXX."""
    digest = salted_hmac(
        "ami-portal-activation", f"{customer.pk}:{customer.account_number}:{month}"
    ).digest()
    raw = base64.b32encode(digest).decode()[:8]
    return f"{raw[:4]}-{raw[4:]}"


def _normal_code(code: str) -> str:
    return "".join(ch for ch in str(code).upper() if ch.isalnum())


def by_bill(account_number: str, code: str, *, today: date | None = None) -> Customer | None:
    """The customer with this account number whose recent bill carries `code`, or None."""
    customer = Customer.objects.filter(account_number=str(account_number).strip()).first()
    if customer is None or not code:
        return None
    today = today or timezone.localdate()
    given = _normal_code(code)
    for back in range(BILL_CODE_MONTHS):
        expected = _normal_code(bill_code(customer, _month_index(today, back)))
        if constant_time_compare(given, expected):
            return customer
    return None


def by_payment(serial: str, amount: str) -> Customer | None:
    """The customer whose meter is `serial` and whose last purchase paid `amount`, or None."""
    serial = str(serial).strip()
    try:
        paid = Decimal(str(amount).strip().replace(",", "."))
    except InvalidOperation:
        return None
    if not serial or not paid.is_finite():
        return None
    account = (
        PrepaidAccount.objects.filter(Q(meter__serial=serial) | Q(meter_number=serial))
        .select_related("customer")
        .first()
    )
    if account is None:
        return None
    last = (
        Sale.objects.filter(account=account, status=SaleStatus.COMPLETED)
        .order_by("-created_at", "-pk")
        .values_list("amount_paid", flat=True)
        .first()
    )
    return account.customer if last is not None and last == paid else None


def activate(customer: Customer, *, username: str, email: str, password: str, via: str) -> User:
    """Create the customer's login (see the module's docstring); ActivationError if it has one."""
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        if locked.portal_user_id is not None:
            raise ActivationError(
                "This account has a login already: sign in or reset the password."
            )
        if User.objects.filter(username__iexact=username).exists():
            raise ActivationError("That user name is taken: choose another.")
        # Like every customer login, in no organisation: the portal finds the customer by
        # its record, and no scope of the utility's reaches it (meters/demo.py).
        user = User.objects.create_user(username=username, email=email, password=password)
        user.groups.add(Group.objects.get(name=roles.CUSTOMER))
        locked.portal_user = user
        locked.save(update_fields=["portal_user"])
        PortalLogin.objects.create(user=user, email=email, activated_by=via)
        audit.record("portal_activated", user=user, obj=locked, changes={"via": via})
    return user


def email_token(user: User, email: str) -> str:
    return signing.dumps({"u": user.pk, "e": email}, salt=EMAIL_SALT, compress=True)


def confirm_email(token: str) -> PortalLogin | None:
    """Mark the address of a valid, unexpired confirmation link confirmed; None otherwise.

    The link names the address it was sent to: a link for an address the customer has
    since changed confirms nothing.
    """
    try:
        data = signing.loads(token, salt=EMAIL_SALT, max_age=EMAIL_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    login = PortalLogin.objects.filter(user_id=data.get("u")).first()
    if login is None or not login.email or login.email != data.get("e"):
        return None
    if login.email_verified_at is None:
        login.email_verified_at = timezone.now()
        login.save(update_fields=["email_verified_at"])
        audit.record("portal_email_confirmed", user=login.user, obj=login.user)
    return login
