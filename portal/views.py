"""The customer portal's pages: home, usage (graph and CSV), prepaid purchases.

Every view is `customer_view`: anonymous visitors are sent to sign in, a signed-in user
without a customer record (staff, operators) gets a plain 403 page that says so, and the
view receives the customer and queries only through `portal.customers`, which filters by
it. A sale of another customer is a 404, the same answer as a sale that does not exist.
"""

from __future__ import annotations

from datetime import date
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone

from amisite.tabular import CsvWriter
from vending import receipts

from . import bills, charts, usage
from .customers import (
    current_outage,
    customer_of,
    daily_bars,
    meters_of,
    monthly_bars,
    prepaid_accounts_of,
    sales_of,
)

PERIODS = {"daily": ("day", daily_bars), "monthly": ("month", monthly_bars)}
PURCHASES_PER_PAGE = 20


def customer_view(view):
    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        customer = customer_of(request.user)
        if customer is None:
            return render(request, "portal/not_a_customer.html", status=403)
        return view(request, customer, *args, **kwargs)

    return wrapped


@customer_view
def home(request, customer):
    months = monthly_bars(customer)
    return render(
        request,
        "portal/home.html",
        {
            "customer": customer,
            "meters": meters_of(customer),
            "accounts": prepaid_accounts_of(customer),
            "this_month": months[-1],
            "last_month": months[-2],
            "outage": current_outage(customer),
            "today": timezone.localdate(),
        },
    )


TICKS = {"day": "%H", "week": "%a", "month": "%d", "year": "%b"}
UNITS = {"day": "hour", "week": "day", "month": "day", "year": "month"}


def _window(request):
    """The period asked for (`?period=day|week|month|year&date=YYYY-MM-DD`; a month by default)."""
    kind = request.GET.get("period", "month")
    if kind not in usage.KINDS:
        raise Http404(f"period is one of {', '.join(usage.KINDS)}")
    today = timezone.localdate()
    try:
        anchor = (
            date.fromisoformat(request.GET.get("date", "")) if request.GET.get("date") else today
        )
    except ValueError as error:
        raise Http404("date is YYYY-MM-DD") from error
    if not date(2000, 1, 1) <= anchor <= today:
        raise Http404("date is between 2000-01-01 and today")
    return usage.window(kind, anchor, today)


@customer_view
def usage_page(request, customer):
    """One period's bars, compared with last year and similar homes, TOU rates, the estimate."""
    win = _window(request)
    bars = usage.bars(customer, win)
    return render(
        request,
        "portal/usage.html",
        {
            "customer": customer,
            "window": win,
            "kinds": usage.KINDS,
            "chart": charts.bar_chart(bars, f"Usage, {win.label}", TICKS[win.kind]),
            "unit": UNITS[win.kind],
            "comparison": usage.compare(customer, win),
            "rates": usage.time_of_use(customer, win),
            "estimate": usage.estimate(customer) if win.following is None else None,
        },
    )


@customer_view
def usage_csv(request, customer):
    """The figures of a usage graph as CSV: `?period=daily` (the last 30 days, default),
    `monthly` (the last 12 months), or one period as on the page (`day`, `week`, `month`,
    `year` with `date`)."""
    period = request.GET.get("period", "daily")
    if period in PERIODS:
        column, bars = PERIODS[period][0], PERIODS[period][1](customer)
    else:
        win = _window(request)
        column, bars = UNITS[win.kind], usage.bars(customer, win)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="usage-{period}.csv"'
    writer = CsvWriter(response)
    writer.writerow([column, "kwh"])
    for bar in bars:
        writer.writerow([bar.label, "" if bar.kwh is None else f"{bar.kwh:.3f}"])
    return response


@customer_view
def purchases(request, customer):
    """The customer's purchases, newest first, `PURCHASES_PER_PAGE` a page (`?page=N`)."""
    page = Paginator(sales_of(customer), PURCHASES_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "portal/purchases.html",
        {
            "customer": customer,
            "accounts": prepaid_accounts_of(customer),
            "sales": page.object_list,
            "page_obj": page,
        },
    )


def _sale(customer, reference):
    sale = sales_of(customer).filter(reference=reference).first()
    if sale is None:
        raise Http404("no such purchase")
    return sale


@customer_view
def purchase(request, customer, reference):
    sale = _sale(customer, reference)
    return render(
        request,
        "portal/purchase.html",
        {"customer": customer, "sale": sale, "receipt": receipts.text_receipt(sale)},
    )


@customer_view
def receipt_pdf(request, customer, reference):
    sale = _sale(customer, reference)
    response = HttpResponse(receipts.pdf_receipt(sale), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="receipt-{sale.reference}.pdf"'
    return response


@customer_view
def bill_list(request, customer):
    """The last complete months: usage, and the issued bill (total, PDF) where there is one."""
    months = bills.months(customer)
    issued = bills.issued(customer, [month for month, _ in months])
    rows = [(month, energy, issued.get(month)) for month, energy in months]
    return render(request, "portal/bills.html", {"customer": customer, "months": rows})


def _bill(customer, month):
    if not bills.is_billable(month):
        raise Http404("bills are for complete months of the last years (YYYY-MM)")
    return bills.for_month(customer, month)


@customer_view
def bill_detail(request, customer, month):
    return render(
        request, "portal/bill.html", {"customer": customer, "bill": _bill(customer, month)}
    )


@customer_view
def bill_pdf(request, customer, month):
    found = _bill(customer, month)
    response = HttpResponse(bills.pdf(found), content_type="application/pdf")
    draft = "" if found.issued_at else "-provisional"
    response["Content-Disposition"] = f'inline; filename="bill-{month}{draft}.pdf"'
    return response


# --- progressive web app: manifest, service worker, offline shell (public, no data) ------
SW_VERSION = "v1"  # a new value makes phones fetch the shell again


def manifest(request):
    """The web app manifest: installable, starts at the portal, phone first."""
    data = {
        "name": "My electricity",
        "short_name": "Electricity",
        "description": "Your usage, bills, prepaid tokens and outages",
        "start_url": reverse("portal:home"),
        "scope": "/portal/",
        "display": "standalone",
        "background_color": "#f4f6f8",
        "theme_color": "#0b6bcb",
        "icons": [
            {"src": static(f"portal/icon-{n}.png"), "sizes": f"{n}x{n}", "type": "image/png"}
            for n in (192, 512)
        ],
    }
    return JsonResponse(data, content_type="application/manifest+json")


def service_worker(request):
    response = render(
        request, "portal/sw.js", {"version": SW_VERSION}, content_type="application/javascript"
    )
    response["Cache-Control"] = "no-cache"
    response["Service-Worker-Allowed"] = "/portal/"
    return response


def offline(request):
    return render(request, "portal/offline.html")
