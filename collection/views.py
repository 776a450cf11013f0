"""Pages of the collection app: runs with live progress, on-demand reads from the meter page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST
from django.views.generic import DetailView, ListView

from accounts.mixins import ScopedViewMixin
from meters.models import Meter

from . import actions
from .choices import ReadItem
from .models import JobRun


class RunListView(ScopedViewMixin, ListView):
    """Recent runs, newest first, with their counts."""

    model = JobRun
    paginate_by = 50
    template_name = "collection/run_list.html"

    def get_queryset(self):
        return self.scoped_queryset().select_related("job")


class RunDetailView(ScopedViewMixin, DetailView):
    """One run: progress (live), each meter's outcome and error."""

    model = JobRun
    template_name = "collection/run_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["results"] = self.object.results.select_related("meter").order_by(
            "status", "meter__serial"
        )[:500]
        return context


@login_required
@require_POST
def read_meter_now(request, serial: str):
    """The meter page's "Read now" button: queue an on-demand read and show its run."""
    meter = get_object_or_404(Meter.objects.restrict(request.user, "view"), serial=serial)
    if not request.user.has_perm("collection.add_jobrun"):
        raise PermissionDenied("You may not read meters on demand.")
    items = [item for item in request.POST.getlist("items") if item in ReadItem.values]
    if not items:
        messages.error(request, "Choose at least one thing to read.")
        return redirect("meters:meter-detail", serial=serial)
    run = actions.request_on_demand_read(meter, items, acting_user=request.user)
    return redirect("collection:run-detail", pk=run.pk)
