"""Dashboard pages of vending: the clerk's counter, sales, accounts, management tokens.

Every page is a `ScopedViewMixin` view (login, role permission, `restrict(user, action)`);
every change calls a function of `vending.actions`.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views import View
from django.views.generic import DetailView, ListView, TemplateView

from accounts.mixins import ScopedViewMixin

from . import actions, receipts, usage
from .choices import SaleStatus, ShiftStatus
from .errors import VendingError
from .forms import CloseShiftForm, ManagementTokenForm, OpenShiftForm, ReverseForm, SellForm
from .models import (
    AccountMovement,
    ManagementOrder,
    PrepaidAccount,
    Sale,
    Shift,
    VendingStation,
)
from .scoping import is_supervisor, may_issue_management_tokens

ACCOUNT_CHOICES = 50


def _stations_for(user):
    stations = VendingStation.objects.restrict(user, "view").filter(active=True)
    return stations if is_supervisor(user) else stations.filter(clerks=user)


def _refund_shifts(user):
    """Open shifts whose drawer may pay a refund: the supervisor's scope."""
    return Shift.objects.restrict(user, "change").filter(status=ShiftStatus.OPEN)


def _open_shift(user):
    return (
        Shift.objects.filter(clerk=user, status=ShiftStatus.OPEN).select_related("station").first()
    )


class CounterView(ScopedViewMixin, TemplateView):
    """The clerk's counter: open/close the shift, sell, the latest sales in scope."""

    model = Sale
    template_name = "vending/counter.html"

    def get_context_data(self, sell_form=None, **kwargs):
        user = self.request.user
        shift = _open_shift(user)
        context = super().get_context_data(**kwargs)
        context.update(
            shift=shift,
            takings=actions.shift_takings(shift) if shift else None,
            refunds=actions.shift_refunds(shift) if shift else None,
            open_form=OpenShiftForm(stations=_stations_for(user)),
            close_form=CloseShiftForm(),
            sell_form=sell_form or SellForm(),
            sales=self.scoped_queryset().select_related("station", "account", "sold_by")[:25],
            can_sell=user.has_perm("vending.add_sale"),
            # Offered as the clerk types: a newcomer need not know a meter number by heart.
            account_choices=PrepaidAccount.objects.restrict(user, "view")
            .filter(active=True)
            .select_related("customer")[:ACCOUNT_CHOICES],
        )
        return context


class CounterActionView(ScopedViewMixin, View):
    """POST-only counter actions: open shift, sell, close shift."""

    model = Sale
    scope_action = "add"

    def post(self, request, what):
        user = request.user
        try:
            if what == "open":
                form = OpenShiftForm(request.POST, stations=_stations_for(user))
                if form.is_valid():
                    actions.open_shift(
                        form.cleaned_data["station"],
                        acting_user=user,
                        opening_float=form.cleaned_data["opening_float"],
                    )
                    messages.success(request, "Shift opened.")
                else:
                    messages.error(request, f"Cannot open the shift: {form.errors.as_text()}")
            elif what == "close":
                form = CloseShiftForm(request.POST)
                shift = _open_shift(user)
                if shift and form.is_valid():
                    shift = actions.close_shift(
                        shift, cash_counted=form.cleaned_data["cash_counted"],
                        note=form.cleaned_data["note"], acting_user=user,
                    )  # fmt: skip
                    messages.success(
                        request, f"Shift closed: expected {shift.expected_cash}, counted "
                        f"{shift.cash_counted}, variance {shift.variance}.",
                    )  # fmt: skip
                else:
                    messages.error(request, "No open shift, or the cash counted is missing.")
            elif what == "sell":
                return self._sell(request)
        except VendingError as exc:
            messages.error(request, str(exc))
        except PermissionDenied as exc:
            messages.error(request, str(exc) or "Not allowed.")
        return redirect("vending:counter")

    def _sell(self, request):
        """Sell, or show the counter again with what the clerk typed and what is wrong with it
        (a typo in a meter number must not make the clerk type the sale again)."""
        form = SellForm(request.POST)
        if form.is_valid():
            account = self._account(form)
            if account is not None:
                try:
                    sale = actions.sell(
                        account, form.cleaned_data["amount"], acting_user=request.user,
                        shift=_open_shift(request.user),
                    )  # fmt: skip
                except (VendingError, PermissionDenied) as exc:
                    form.add_error(None, f"Not sold: {exc or 'not allowed.'}")
                    if _open_shift(request.user) is None:  # no shift: no sell form to show it
                        messages.error(request, f"Not sold: {exc or 'not allowed.'}")
                else:
                    return redirect("vending:sale-detail", reference=sale.reference)
        counter = CounterView()
        counter.setup(request)
        return render(request, counter.template_name, counter.get_context_data(sell_form=form))

    def _account(self, form):
        """The one prepaid account in scope the number names, else None and the form's error."""
        number = form.cleaned_data["meter_number"].replace(" ", "")
        visible = PrepaidAccount.objects.restrict(self.request.user, "view")
        matches = list(
            visible.filter(
                Q(meter_number=number) | Q(pan=number) | Q(customer__account_number=number)
            )[:2]
        )
        if len(matches) == 1:
            return matches[0]
        form.add_error(
            "meter_number",
            f"No prepaid account has the meter number, MeterPAN or account number {number}."
            if not matches
            else f"Several prepaid accounts match {number}: enter the meter number.",
        )
        return None


class SearchedListView(ScopedViewMixin, ListView):
    """A scoped list, 50 a page, searched by `?q=` in `search_fields` (case-insensitive)."""

    paginate_by = 50
    search_fields: tuple[str, ...] = ()
    related: tuple[str, ...] = ()

    def get_queryset(self):
        queryset = self.scoped_queryset().select_related(*self.related)
        q = self.request.GET.get("q", "").strip()
        if q:
            wanted = Q()
            for field in self.search_fields:
                wanted |= Q(**{f"{field}__icontains": q})
            queryset = queryset.filter(wanted)
        return queryset


class SaleListView(SearchedListView):
    """Sales in scope, newest first: a clerk's stations and own sales, a payment system's own."""

    model = Sale
    template_name = "vending/sale_list.html"
    related = ("account", "station", "sold_by")
    search_fields = ("account__meter_number", "payment_reference", "account__customer__name")


class SaleDetailView(ScopedViewMixin, DetailView):
    """One sale: the token, the breakdown, receipts, reprint and (supervisors) reversal."""

    model = Sale
    slug_field = "reference"
    slug_url_kwarg = "reference"
    template_name = "vending/sale_detail.html"

    def get_queryset(self):
        return self.scoped_queryset().select_related(
            "account__customer", "station", "sold_by", "tariff", "organisation"
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        sale = self.object
        context.update(
            token=sale.credit_token,
            reversal=getattr(sale, "reversal", None),
            can_reverse=is_supervisor(self.request.user) and sale.status == SaleStatus.COMPLETED,
            reverse_form=ReverseForm(shifts=_refund_shifts(self.request.user)),
            receipt_text=receipts.text_receipt(sale),
        )
        return context


class SaleActionView(ScopedViewMixin, View):
    """POST on a sale: reprint (same token, marked REPRINT) or reverse (supervisors)."""

    model = Sale

    def post(self, request, reference, what):
        sale = get_object_or_404(self.scoped_queryset(), reference=reference)
        try:
            if what == "reprint":
                actions.record_reprint(sale, acting_user=request.user)
                return redirect("vending:receipt", reference=reference, fmt="pdf")
            form = ReverseForm(request.POST, shifts=_refund_shifts(request.user))
            if form.is_valid():
                reversal = actions.reverse_sale(sale, acting_user=request.user,
                                                **form.cleaned_data)  # fmt: skip
                messages.success(request, f"Sale reversed; refund {reversal.refund_amount}.")
            else:
                messages.error(request, f"Cannot reverse: {form.errors.as_text()}")
        except VendingError as exc:
            messages.error(request, str(exc))
        except PermissionDenied as exc:
            messages.error(request, str(exc))
        return redirect("vending:sale-detail", reference=reference)


class ReceiptView(ScopedViewMixin, View):
    """The receipt of a sale as PDF or 48-column text (marked REPRINT after the first)."""

    model = Sale

    def get(self, request, reference, fmt):
        sale = get_object_or_404(self.scoped_queryset(), reference=reference)
        if fmt == "pdf":
            response = HttpResponse(receipts.pdf_receipt(sale), content_type="application/pdf")
            response["Content-Disposition"] = f'inline; filename="receipt-{sale.reference}.pdf"'
            return response
        return HttpResponse(receipts.text_receipt(sale), content_type="text/plain; charset=utf-8")


class AccountListView(SearchedListView):
    model = PrepaidAccount
    template_name = "vending/account_list.html"
    related = ("customer", "tariff", "meter")
    search_fields = ("meter_number", "customer__account_number", "customer__name")


class AccountDetailView(ScopedViewMixin, DetailView):
    """An account: STS parameters, vending history, credit use from AMI, management tokens."""

    model = PrepaidAccount
    template_name = "vending/account_detail.html"

    def get_queryset(self):
        return self.scoped_queryset().select_related("customer", "tariff", "meter")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        account = self.object
        user = self.request.user
        now = timezone.now()
        since = now - timedelta(days=30)
        sales = Sale.objects.restrict(user, "view").filter(account=account)
        used = usage.energy_used(account.meter, since, now)
        context.update(
            sales=sales.prefetch_related("tokens")[:50],
            bought_30d=sum(
                s.energy_kwh
                for s in sales.filter(created_at__gte=since, status=SaleStatus.COMPLETED)
            ),  # fmt: skip
            used_30d=used,
            estimate=usage.credit_estimate(account, now),
            rate_days=usage.RATE_DAYS,
            no_readings_message=usage.NO_READINGS_MESSAGE,
            movements=AccountMovement.objects.restrict(user, "view").filter(account=account)[:50],
            orders=ManagementOrder.objects.restrict(user, "view")
            .filter(account=account)
            .prefetch_related("tokens")[:20],
            management_form=ManagementTokenForm(),
            can_manage=may_issue_management_tokens(user),
        )
        return context


class ManagementTokenView(ScopedViewMixin, View):
    """POST: issue management token(s) to an account's meter (supervisors)."""

    model = ManagementOrder
    scope_action = "add"

    def post(self, request, pk):
        account = get_object_or_404(PrepaidAccount.objects.restrict(request.user, "view"), pk=pk)
        form = ManagementTokenForm(request.POST)
        if not form.is_valid():
            messages.error(request, f"Cannot issue: {form.errors.as_text()}")
            return redirect("vending:account-detail", pk=pk)
        data = dict(form.cleaned_data)
        purpose = data.pop("purpose")
        try:
            order = actions.issue_management_tokens(account, purpose, acting_user=request.user,
                                                    **data)  # fmt: skip
            digits = ", ".join(t.grouped for t in order.tokens.order_by("sequence"))
            messages.success(request, f"{order.get_purpose_display()}: {digits}")
        except (VendingError, PermissionDenied) as exc:
            messages.error(request, str(exc))
        return redirect("vending:account-detail", pk=pk)
