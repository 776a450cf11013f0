"""The file exchange log (`/reports/exchange/`): every file written to or read from the
exchange folders of the user's organisations, newest first, paged and filtered; one row's
page shows its rejection report."""

from __future__ import annotations

from django.db.models import Q
from django.views.generic import DetailView, ListView

from accounts.mixins import ScopedViewMixin

from .exchange import folders
from .models import ExchangeDirection, ExchangeLog, ExchangeState, ExchangeTarget


class ExchangeLogView(ScopedViewMixin, ListView):
    model = ExchangeLog
    paginate_by = 50
    template_name = "reports/exchange.html"

    def targets(self):
        return ExchangeTarget.objects.restrict(self.request.user, "view").select_related(
            "organisation"
        )

    def get_queryset(self):
        rows = self.scoped_queryset().select_related("target")
        get = self.request.GET
        if get.get("direction") in ExchangeDirection.values:
            rows = rows.filter(direction=get["direction"])
        if get.get("state") in ExchangeState.values:
            rows = rows.filter(state=get["state"])
        if (target := get.get("target", "")).isdigit():
            rows = rows.filter(target__in=self.targets().filter(pk=int(target)))
        if q := get.get("q", "").strip():
            rows = rows.filter(Q(filename__icontains=q) | Q(summary__icontains=q))
        return rows.order_by("-created_at", "-id")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = self.request.GET.copy()
        params.pop("page", None)
        get = self.request.GET
        context.update(
            targets=[(t, folders.base(t)) for t in self.targets()],
            directions=ExchangeDirection.choices,
            states=ExchangeState.choices,
            direction=get.get("direction", ""),
            state=get.get("state", ""),
            target=get.get("target", ""),
            q=get.get("q", ""),
            query_string=params.urlencode(),
        )
        return context


class ExchangeLogDetailView(ScopedViewMixin, DetailView):
    model = ExchangeLog
    template_name = "reports/exchange_row.html"
    context_object_name = "row"

    def get_queryset(self):
        return self.scoped_queryset().select_related("target", "organisation")
