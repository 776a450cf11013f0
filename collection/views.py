"""Pages of the collection app: runs with live progress, on-demand reads from the meter page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST
from django.views.generic import DetailView, ListView, TemplateView

from accounts import audit
from accounts.actions import OutOfScope
from accounts.mixins import ScopedViewMixin
from amisite.badinput import int_param
from meters.models import Meter
from meters.store.days import parse_moment

from . import actions, readings_shown
from .choices import ReadItem
from .forms import ReadJobForm
from .health import system_status
from .models import JobRun, ReadJob


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
        results = list(
            self.object.results.select_related("meter__meter_model").order_by(
                "status", "meter__serial"
            )[:500]
        )
        for result in results:
            result.reading = readings_shown.tables(result.data, result.meter)
        context["results"] = results
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


class SystemStatusView(ScopedViewMixin, TemplateView):
    """Workers, queues, beat, read rates, today's success and unreachable meters."""

    model = JobRun
    template_name = "collection/status.html"

    def get_context_data(self, **kwargs):
        days = int_param(self.request, "days", 3, 1, 365)
        return {
            **super().get_context_data(**kwargs),
            "status": system_status(self.request.user, unreachable_days=days),
        }


class ReadJobListView(ScopedViewMixin, ListView):
    """Read jobs with their schedule and their last run."""

    model = ReadJob
    paginate_by = 50
    template_name = "collection/job_list.html"

    def get_queryset(self):
        return self.scoped_queryset().select_related("organisation", "grid_node", "meter_model")


class ReadJobEditView(ScopedViewMixin, TemplateView):
    """Create (no pk) or change a read job."""

    model = ReadJob
    template_name = "collection/job_form.html"

    def get_permission_required(self):
        action = "change" if "pk" in self.kwargs else "add"
        return [f"collection.{action}_readjob"]

    def job(self):
        if "pk" not in self.kwargs:
            return None
        return get_object_or_404(
            ReadJob.objects.restrict(self.request.user, "change"), pk=self.kwargs["pk"]
        )

    def get(self, request, *args, **kwargs):
        job = self.job()
        form = ReadJobForm(instance=job, user=request.user)
        return self.render_to_response({"form": form, "job": job})

    def post(self, request, *args, **kwargs):
        job = self.job()
        before = audit.snapshot(job) if job else None
        form = ReadJobForm(request.POST, instance=job, user=request.user)
        if form.is_valid():
            try:
                saved = actions.save_read_job(
                    form.save(commit=False), acting_user=request.user, before=before
                )
            except OutOfScope as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Read job {saved.name} saved.")
                return redirect("collection:job-list")
        return self.render_to_response({"form": form, "job": job})


class ReadJobDeleteView(ScopedViewMixin, TemplateView):
    """Confirm, then delete a read job (its runs stay)."""

    model = ReadJob
    scope_action = "delete"
    template_name = "collection/job_confirm_delete.html"

    def get(self, request, *args, **kwargs):
        job = get_object_or_404(self.scoped_queryset(), pk=kwargs["pk"])
        return self.render_to_response({"job": job})

    def post(self, request, *args, **kwargs):
        job = get_object_or_404(self.scoped_queryset(), pk=kwargs["pk"])
        actions.delete_read_job(job, acting_user=request.user)
        messages.success(request, f"Read job {job.name} deleted.")
        return redirect("collection:job-list")


@login_required
@require_POST
def reread_job_period(request, pk: int):
    """Read a named period (local days, both inclusive) again for a job's meters."""
    job = get_object_or_404(ReadJob.objects.restrict(request.user, "view"), pk=pk)
    if not request.user.has_perm("collection.add_jobrun"):
        raise PermissionDenied("You may not start runs.")
    try:
        since = parse_moment(request.POST.get("since", ""))
        until = parse_moment(request.POST.get("until", ""), end=True)
        run = actions.reread_period(since=since, until=until, job=job, acting_user=request.user)
    except ValueError as exc:  # a bad date or a BadPeriod
        messages.error(request, f"{job.name}: {exc}")
        return redirect("collection:job-list")
    return redirect("collection:run-detail", pk=run.pk)


@login_required
@require_POST
def run_job_now(request, pk: int):
    """Start a run of a job now, then show its progress."""
    job = get_object_or_404(ReadJob.objects.restrict(request.user, "view"), pk=pk)
    if not request.user.has_perm("collection.add_jobrun"):
        raise PermissionDenied("You may not start runs.")
    run = actions.start_run(job, kind="manual", acting_user=request.user)
    return redirect("collection:run-detail", pk=run.pk)
