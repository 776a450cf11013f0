"""Buying a token in the portal: the form, the payment's page, the sandbox checkout and the
providers' webhooks (see `portal.payments`)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import payments
from .customers import prepaid_accounts_of
from .models import Payment, PaymentState
from .payments.base import Outcome, minor_units
from .views import customer_view


@customer_view
def pay(request, customer):
    """Choose the prepaid meter and the amount; the provider's checkout follows."""
    accounts = list(prepaid_accounts_of(customer))
    error = ""
    if request.method == "POST":
        account = next((a for a in accounts if str(a.pk) == request.POST.get("account")), None)
        try:
            amount = Decimal(request.POST.get("amount", "").strip().replace(",", "."))
        except InvalidOperation:
            amount = None
        if account is None:
            error = "Choose one of your prepaid meters."
        elif amount is None or not amount.is_finite():
            error = "Enter the amount as a number, e.g. 50 or 49.50."
        else:
            try:
                payment, url = payments.begin(
                    customer,
                    account,
                    amount,
                    return_url=lambda p: _payment_url(request, p),
                    cancel_url=lambda p: _payment_url(request, p) + "?cancelled=1",
                )
            except payments.ProviderError as problem:
                error = str(problem)
            else:
                return redirect(url)
    return render(
        request,
        "portal/pay.html",
        {
            "customer": customer,
            "accounts": accounts,
            "error": error,
            "amount": request.POST.get("amount", ""),
        },
        status=400 if error else 200,
    )


def _payment_url(request, found: Payment) -> str:
    return request.build_absolute_uri(reverse("portal:payment", args=[found.reference]))


def _payment(customer, reference) -> Payment:
    payment = (
        Payment.objects.filter(customer=customer, reference=reference)
        .select_related("account", "sale")
        .first()
    )
    if payment is None:
        raise Http404("no such payment")
    return payment


@customer_view
def payment(request, customer, reference):
    """A payment's state; once paid, its token (also sent by SMS and e-mail)."""
    found = _payment(customer, reference)
    return render(
        request,
        "portal/payment.html",
        {
            "customer": customer,
            "payment": found,
            "token": found.sale.credit_token if found.sale_id else None,
            "sent_to": _sent_to(customer),
            "cancelled": request.GET.get("cancelled") and found.state != PaymentState.PAID,
        },
    )


def _sent_to(customer) -> str:
    """Where `payments.notify` sends the token: what the page may promise, nothing more."""
    phone, email = payments.token_destinations(customer)
    ways = ([f"by SMS to {phone}"] if phone else []) + ([f"by e-mail to {email}"] if email else [])
    return " and ".join(ways)


@customer_view
def sandbox(request, customer, reference):
    """The sandbox provider's checkout: pay or decline (no money moves)."""
    found = _payment(customer, reference)
    if found.provider != "sandbox":
        raise Http404("not a sandbox payment")
    if request.method == "POST":
        paid = request.POST.get("action") == "pay"
        payments.settle(
            "sandbox",
            Outcome(
                found.provider_ref,
                paid,
                True,
                minor_units(found.amount),
                found.currency,
                reason="" if paid else "declined in the sandbox",
            ),  # fmt: skip
        )
        return redirect("portal:payment", reference)
    return render(request, "portal/pay_sandbox.html", {"customer": customer, "payment": found})


@csrf_exempt
@require_POST
def webhook(request, provider_name):
    """A provider's notification: verified, then settled (200 also for a repeat)."""
    try:
        chosen = payments.provider(provider_name)
        outcome = chosen.parse_webhook(request.body, request.headers)
    except (payments.ProviderError, payments.BadSignature):
        return HttpResponseBadRequest("not a verified notification")
    payments.settle(chosen.name, outcome)
    return HttpResponse("ok")
