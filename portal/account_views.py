"""The portal's account pages: activation, e-mail confirmation, password, reset, second factor.

Activation is two steps: `activate` proves who the customer is (bill code or last payment;
tries are counted, `portal.limits`) and keeps the customer's id, signed, in the session for
`ACTIVATION_MINUTES`; `activate_details` creates the login and signs the customer in. An
e-mail with a confirmation link goes to the address given; password reset links go only
to a confirmed address, and a request for any other address answers the same (no probing
which addresses have logins).

The second factor is the staff's (`accounts.two_factor`): optional for a customer, and once
enrolled asked at every sign-in (the door sends an unconfirmed session to `verify`).
"""

from __future__ import annotations

import logging
import smtplib

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.encoding import force_bytes, force_str
from django.utils.http import (
    url_has_allowed_host_and_scheme,
    urlencode,
    urlsafe_base64_decode,
    urlsafe_base64_encode,
)
from django.utils.safestring import mark_safe

from accounts import audit, two_factor
from accounts.models import RecoveryCode, TotpDevice, User

from . import activation, limits
from .forms import ActivateForm, EmailForm, LoginDetailsForm, ResetForm
from .models import AttemptKind, PortalLogin
from .views import customer_view

ACTIVATION_SALT = "ami-portal-activating"
ACTIVATION_MINUTES = 30
ENROL_MAX_AGE = 15 * 60
TOO_MANY = "Too many tries: wait a quarter of an hour and try again."
LINK_INVALID = "This link is not valid or has expired: ask for a new one on your login page."
SEND_FAILED = "We could not send the e-mail just now: send it again from your login page later."
log = logging.getLogger(__name__)


def _send(subject: str, body: str, to: str) -> bool:
    """Send one e-mail; False (logged) if the mail server refused it."""
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to], fail_silently=False)
    except (smtplib.SMTPException, OSError):
        log.warning("portal e-mail to %s not sent", to, exc_info=True)
        return False
    return True


def send_confirmation(request, user: User, email: str) -> bool:
    link = request.build_absolute_uri(
        reverse("portal:email-confirm")
        + "?"
        + urlencode({"t": activation.email_token(user, email)})
    )
    return _send(
        "Confirm your e-mail address",
        f"Hello,\n\nconfirm that {email} is yours for your electricity account:\n{link}\n\n"
        "The link works for 3 days. If you did not ask for this, ignore this message.",
        email,
    )


def activate(request):
    """Step 1: prove to be the customer."""
    form = ActivateForm(request.POST or None)
    if request.method == "POST":
        if limits.blocked(request, AttemptKind.ACTIVATION, form.key):
            form.is_valid()
            form.add_error(None, TOO_MANY)
            return render(request, "portal/activate.html", {"form": form}, status=429)
        if form.is_valid():
            data = form.cleaned_data
            customer, via = None, ""
            if data["account_number"] and data["bill_code"]:
                customer = activation.by_bill(data["account_number"], data["bill_code"])
                via = activation.BY_BILL
            if customer is None and data["meter_serial"] and data["last_payment"]:
                customer = activation.by_payment(data["meter_serial"], data["last_payment"])
                via = activation.BY_PAYMENT
            limits.record(request, AttemptKind.ACTIVATION, form.key, customer is not None)
            if customer is not None and customer.portal_user_id is not None:
                form.add_error(
                    None, "This account has a login already: sign in, or reset the password."
                )
            elif customer is not None:
                request.session[ACTIVATION_SALT] = signing.dumps(
                    {"c": customer.pk, "via": via}, salt=ACTIVATION_SALT
                )
                return redirect("portal:activate-details")
            else:
                form.add_error(
                    None,
                    "We could not find an account with these details. Check them and try again.",
                )
    return render(request, "portal/activate.html", {"form": form})


def _activating(request):
    token = request.session.get(ACTIVATION_SALT)
    if not token:
        return None, ""
    try:
        data = signing.loads(token, salt=ACTIVATION_SALT, max_age=ACTIVATION_MINUTES * 60)
    except signing.BadSignature:
        return None, ""
    customer = activation.Customer.objects.filter(pk=data["c"], portal_user__isnull=True).first()
    return customer, data["via"]


def activate_details(request):
    """Step 2: user name, e-mail and password; the login is created and signed in."""
    customer, via = _activating(request)
    if customer is None:
        return render(request, "portal/activate_details.html", {"expired": True})
    form = LoginDetailsForm(request.POST or None, initial={"email": customer.email})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = activation.activate(
                customer,
                username=data["username"],
                email=data["email"],
                password=data["password1"],
                via=via,
            )
        except activation.ActivationError as error:
            form.add_error(None, str(error))
        else:
            request.session.pop(ACTIVATION_SALT, None)
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            if send_confirmation(request, user, data["email"]):
                messages.success(
                    request,
                    f"Welcome. We sent a link to {data['email']}: open it to confirm the address.",
                )
            else:
                messages.warning(request, SEND_FAILED)
            return redirect("portal:home")
    return render(request, "portal/activate_details.html", {"form": form, "customer": customer})


def email_confirm(request):
    """The link from the e-mail: a button confirms (a link scanner's GET confirms nothing)."""
    token = request.GET.get("t", "")
    if request.method == "POST":
        if limits.blocked(request, AttemptKind.VERIFY, ""):
            return render(request, "portal/email_confirm.html", {"error": TOO_MANY}, status=429)
        confirmed = activation.confirm_email(request.POST.get("t", ""))
        limits.record(request, AttemptKind.VERIFY, "", confirmed is not None)
        if confirmed is None:
            return render(
                request,
                "portal/email_confirm.html",
                {"error": LINK_INVALID},
                status=400,
            )
        return render(request, "portal/email_confirm.html", {"confirmed": confirmed})
    return render(request, "portal/email_confirm.html", {"token": token})


@customer_view
def account(request, customer):
    """The login: e-mail (confirmed or not; send the link again; change it), password, factor."""
    portal_login = PortalLogin.objects.filter(user=request.user).first()
    if portal_login is None and request.method == "POST":  # a login made by the utility's staff
        portal_login = PortalLogin.objects.create(user=request.user, email=request.user.email)
    form = EmailForm(request.POST or None, initial={"email": portal_login and portal_login.email})
    if request.method == "POST":
        if (
            request.POST.get("action") == "resend"
            and portal_login.email
            and not portal_login.email_verified
        ):
            if send_confirmation(request, request.user, portal_login.email):
                messages.success(request, f"We sent the link again to {portal_login.email}.")
            else:
                messages.warning(request, SEND_FAILED)
            return redirect("portal:account")
        if request.POST.get("action") == "email" and form.is_valid():
            new = form.cleaned_data["email"]
            if new != portal_login.email:
                with transaction.atomic():
                    portal_login.email, portal_login.email_verified_at = new, None
                    portal_login.save(update_fields=["email", "email_verified_at"])
                    User.objects.filter(pk=request.user.pk).update(email=new)
                    audit.record("portal_email_changed", user=request.user, obj=request.user)
                if send_confirmation(request, request.user, new):
                    messages.success(request, f"We sent a link to {new}: open it to confirm it.")
                else:
                    messages.warning(request, SEND_FAILED)
            return redirect("portal:account")
    return render(
        request,
        "portal/account.html",
        {
            "customer": customer,
            "login": portal_login,
            "form": form,
            "device": two_factor.device_of(request.user),
            "codes_left": RecoveryCode.objects.filter(
                user=request.user, used_at__isnull=True
            ).count(),
        },
    )


@customer_view
def password(request, customer):
    """Change the password; this session stays, every other session of the login ends."""
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        form.save()
        update_session_auth_hash(request, form.user)
        messages.success(request, "Password changed.")
        return redirect("portal:account")
    return render(request, "portal/password.html", {"customer": customer, "form": form})


def reset(request):
    """Ask for a reset link by e-mail (sent only to a confirmed address; same answer always)."""
    form = EmailForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        if limits.blocked(request, AttemptKind.RESET, email):
            form.add_error(None, TOO_MANY)
            return render(request, "portal/reset.html", {"form": form}, status=429)
        found = (
            PortalLogin.objects.filter(
                email__iexact=email, email_verified_at__isnull=False, user__is_active=True
            )
            .select_related("user")
            .first()
        )
        limits.record(request, AttemptKind.RESET, email, found is not None)
        if found is not None:
            user = found.user
            link = request.build_absolute_uri(
                reverse("portal:reset-confirm")
                + "?"
                + urlencode(
                    {
                        "u": urlsafe_base64_encode(force_bytes(user.pk)),
                        "t": default_token_generator.make_token(user),
                    }
                )
            )
            _send(
                "Reset your password",
                f"Hello,\n\nset a new password for {user.get_username()} here:\n{link}\n\n"
                "If you did not ask for this, ignore this message: your password stays as it is.",
                found.email,
            )
        return render(request, "portal/reset.html", {"sent": email})
    return render(request, "portal/reset.html", {"form": form})


def _reset_user(request) -> User | None:
    source = request.POST if request.method == "POST" else request.GET
    try:
        pk = force_str(urlsafe_base64_decode(source.get("u", "")))
        user = User.objects.filter(pk=int(pk), is_active=True, portal_login__isnull=False).first()
    except (ValueError, TypeError):
        return None
    if user is None or not default_token_generator.check_token(user, source.get("t", "")):
        return None
    return user


def reset_confirm(request):
    """The link from the reset e-mail: a new password (the link then works no more)."""
    user = _reset_user(request)
    if user is None:
        return render(request, "portal/reset_confirm.html", {"invalid": True})
    form = ResetForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user.set_password(form.cleaned_data["password1"])
        user.save()  # the activity log hears of it (accounts/audit.py); old sessions end
        return render(request, "portal/reset_confirm.html", {"done": True})
    return render(
        request,
        "portal/reset_confirm.html",
        {
            "form": form,
            "u": request.GET.get("u", request.POST.get("u")),
            "t": request.GET.get("t", request.POST.get("t")),
        },
    )


def _next(request) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or reverse("portal:home")
    if url_has_allowed_host_and_scheme(wanted, {request.get_host()}, request.is_secure()):
        return wanted
    return reverse("portal:home")


@customer_view
def second_factor(request, customer):
    """Turn the second factor on (scan, confirm a code, keep the recovery codes) or off."""
    device = two_factor.device_of(request.user)
    salt = f"ami-portal-enrol:{request.user.pk}"
    if request.method == "POST" and request.POST.get("action") == "off":
        if device is not None and two_factor.verify(request.user, request.POST.get("code", "")):
            with transaction.atomic():
                TotpDevice.objects.filter(user=request.user).delete()
                RecoveryCode.objects.filter(user=request.user).delete()
                audit.record("two_factor_removed", user=request.user, obj=request.user)
            messages.success(request, "The second factor is off: your password alone signs you in.")
            return redirect("portal:account")
        messages.error(request, "That code is not right: the second factor stays on.")
        return redirect("portal:two-factor")
    if request.method == "POST" and device is None:
        try:
            secret = signing.loads(request.POST.get("secret", ""), salt=salt, max_age=ENROL_MAX_AGE)
        except signing.BadSignature:
            secret = None
        codes = secret and two_factor.enrol(request.user, secret, request.POST.get("code", ""))
        if codes:
            two_factor.mark_verified(request)
            return render(
                request, "portal/two_factor.html", {"customer": customer, "recovery_codes": codes}
            )
        messages.error(
            request, "That code does not match: scan the QR code again and enter the code shown."
        )
        return redirect("portal:two-factor")
    context = {"customer": customer, "device": device}
    if device is None:
        secret = two_factor.new_secret()
        context.update(
            qr_svg=mark_safe(two_factor.qr_svg(two_factor.otpauth_uri(request.user, secret))),  # noqa: S308 - drawn here
            secret=two_factor.base32(secret),
            signed_secret=signing.dumps(secret, salt=salt),
        )
    return render(request, "portal/two_factor.html", context)


def verify(request):
    """After the password, a customer with a second factor enters a code (or a recovery code)."""
    if not request.user.is_authenticated:
        return redirect(f"{settings.LOGIN_URL}?{urlencode({'next': request.get_full_path()})}")
    if two_factor.is_verified(request):
        return redirect(_next(request))
    if request.method == "POST":
        if two_factor.verify(request.user, request.POST.get("code", "")):
            two_factor.mark_verified(request)
            return redirect(_next(request))
        messages.error(request, "That code is not right (or was used already). Try the next one.")
    return render(request, "portal/verify.html", {"next": _next(request)})
