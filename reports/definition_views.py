"""Pages of the report engine: stored definitions (list, edit, versions, show, run), their
runs (progress, download) and schedules (edit, delivery log). Routed in `reports/urls.py`."""

from __future__ import annotations

from itertools import islice

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.text import slugify
from django.views.generic import DetailView, ListView, TemplateView

from accounts import actions as account_actions
from accounts import audit
from accounts.actions import OutOfScope
from accounts.mixins import ScopedViewMixin
from amisite.badinput import int_param
from meters.store.days import local_zone

from . import actions, charts, engine
from .building import run_path
from .exporters import FORMATS
from .forms import ReportDefinitionForm, ReportScheduleForm
from .models import (
    DeliveryState,
    ExportStatus,
    PeriodKind,
    ReportDefinition,
    ReportDelivery,
    ReportRun,
    ReportSchedule,
    ReportVersion,
    RunFormat,
)

SORTS = {"name": "name", "-name": "-name", "source": "source", "-source": "-source",
         "updated": "updated_at", "-updated": "-updated_at"}  # fmt: skip
SORT_LABELS = [("name", "name"), ("-name", "name, descending"), ("source", "report"),
               ("-updated", "last saved first"), ("updated", "last saved last")]  # fmt: skip
SHOW_PAGE = 100


class DefinitionListView(ScopedViewMixin, ListView):
    """Stored reports in scope: search, sort, paging; the built-ins on demand."""

    model = ReportDefinition
    paginate_by = 50
    template_name = "reports/definitions.html"

    def get_queryset(self):
        queryset = self.scoped_queryset().select_related("organisation")
        q = self.request.GET.get("q", "").strip()
        if q:
            queryset = queryset.filter(Q(name__icontains=q) | Q(description__icontains=q))
        sort = self.request.GET.get("sort")
        return queryset.order_by(SORTS.get(sort, "name"), "pk")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = self.request.GET.copy()
        params.pop("page", None)
        failing = ReportDelivery.objects.restrict(self.request.user, "view").filter(
            status=DeliveryState.FAILED, schedule__isnull=False
        )
        context.update(
            q=self.request.GET.get("q", ""),
            sort=self.request.GET.get("sort", "name"),
            sorts=SORT_LABELS,
            query_string=params.urlencode(),
            titles=dict(engine.source_choices()),
            failing=set(failing.values_list("schedule__definition_id", flat=True)),
        )
        return context


class DefinitionSeedView(ScopedViewMixin, TemplateView):
    """POST: a definition of every built-in report for the user's organisation."""

    model = ReportDefinition
    scope_action = "add"
    http_method_names = ["post", "options"]

    def post(self, request, *args, **kwargs):
        organisation = request.user.organisation
        if organisation is None:
            messages.error(request, "You belong to no organisation: add reports one by one.")
            return redirect("reports:definitions")
        made = actions.seed_builtins(organisation, request.user)
        audit.record("create", user=request.user, detail=f"{len(made)} built-in report definitions")
        messages.success(request, f"{len(made)} built-in reports added to {organisation}.")
        return redirect("reports:definitions")


class DefinitionEditView(ScopedViewMixin, TemplateView):
    """Create (no pk) or change a definition; every save is a new version."""

    model = ReportDefinition
    template_name = "reports/definition_form.html"

    def get_permission_required(self):
        return [f"reports.{'change' if 'pk' in self.kwargs else 'add'}_reportdefinition"]

    def definition(self):
        if "pk" not in self.kwargs:
            return None
        return get_object_or_404(
            ReportDefinition.objects.restrict(self.request.user, "change"), pk=self.kwargs["pk"]
        )

    def context(self, form, definition):
        sources = [
            {"title": s.title, "description": s.description,
             "filters": [engine.FILTER_LABELS[f] for f in s.filters],
             "groupings": [(k, g.label, [c for c, _h in g.columns])
                           for k, g in s.groupings.items()],
             "max_days": s.max_days, "quantities": s.quantities}
            for s in engine.SOURCES.values()
        ]  # fmt: skip
        return {"form": form, "definition": definition, "sources": sources}

    def get(self, request, *args, **kwargs):
        definition = self.definition()
        initial = {} if definition else {"organisation": request.user.organisation}
        source = request.GET.get("source")
        if source in engine.SOURCES and not definition:
            initial |= {"source": source, "name": engine.SOURCES[source].title}
            if source == "query":  # "Save as a report" on the data query page
                initial |= query_initial(request.GET)
        form = ReportDefinitionForm(instance=definition, user=request.user, initial=initial)
        return self.render_to_response(self.context(form, definition))

    def post(self, request, *args, **kwargs):
        definition = self.definition()
        before = audit.snapshot(definition) if definition else None
        form = ReportDefinitionForm(request.POST, instance=definition, user=request.user)
        if form.is_valid():
            try:
                with transaction.atomic():
                    saved = form.save(commit=False)
                    version = actions.save_definition(saved, request.user)
                    account_actions.record_saved(saved, acting_user=request.user, before=before)
            except OutOfScope as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"{saved.name} saved as version {version.number}.")
                return redirect("reports:definition", pk=saved.pk)
        return self.render_to_response(self.context(form, definition))


def query_initial(params) -> dict:
    """A new data-query definition's fields from the query page's parameters (the form
    checks them like any input: a node or model out of scope is not offered)."""
    initial = {"quantities": ", ".join(params.getlist("channels"))}
    if params.get("resolution") in engine.SOURCES["query"].groupings:
        initial["grouping"] = params["resolution"]
    for name in ("node", "meter_model"):
        if params.get(name, "").isdigit():
            initial[name] = int(params[name])
    if params.get("start") and params.get("end"):
        initial |= {"period": "fixed", "period_from": params["start"], "period_to": params["end"]}
    return initial


class DefinitionDetailView(ScopedViewMixin, DetailView):
    """A definition: its settings, versions, schedules (failures shown), recent runs."""

    model = ReportDefinition
    template_name = "reports/definition_detail.html"
    context_object_name = "definition"

    def get_context_data(self, **kwargs):
        definition = self.object
        user = self.request.user
        schedules = list(
            ReportSchedule.objects.restrict(user, "view")
            .filter(definition=definition)
            .prefetch_related("recipients")
        )
        for schedule in schedules:
            schedule.failed = schedule.deliveries.filter(status=DeliveryState.FAILED).count()
            schedule.last_run = schedule.runs.first()
        source = engine.SOURCES.get(definition.source)
        return {
            **super().get_context_data(**kwargs),
            "source": source,
            "versions": definition.versions.select_related("saved_by")[:20],
            "runs": ReportRun.objects.restrict(user, "view")
            .filter(definition=definition)
            .select_related("version", "requested_by", "schedule")[:20],
            "schedules": schedules,
            "formats": RunFormat.choices,
            "settings_rows": _settings_rows(engine.snapshot(definition)) if source else [],
        }


def _settings_rows(snapshot: dict) -> list[tuple[str, str]]:
    """A version's settings as (label, text) lines for a page."""
    source = engine.SOURCES.get(snapshot.get("source"))
    period = snapshot.get("period")
    if period == PeriodKind.FIXED:
        period = f"{snapshot.get('period_from')} to {snapshot.get('period_to')}"
    elif period in PeriodKind.values:
        period = PeriodKind(period).label
    grouping = snapshot.get("grouping")
    if source and grouping in source.groupings:
        grouping = source.groupings[grouping].label
    return [
        ("Report", source.title if source else snapshot.get("source")),
        ("Grid node", snapshot.get("node_code") or "everything"),
        ("Meter model", snapshot.get("meter_model_name") or "every model"),
        ("Customer class", snapshot.get("customer_class") or "every class"),
        ("Grouping", grouping),
        ("Columns", ", ".join(snapshot.get("columns") or []) or "all"),
        *(
            (("Quantities", ", ".join(snapshot["quantities"])),)
            if snapshot.get("quantities")
            else ()
        ),
        ("Period", period),
        ("Graph", "yes" if snapshot.get("graph") else "no"),
    ]


class VersionView(ScopedViewMixin, DetailView):
    """One saved version of a definition, beside the one before it."""

    model = ReportVersion
    template_name = "reports/version_detail.html"
    context_object_name = "version"

    def get_queryset(self):
        return super().get_queryset().select_related("definition", "saved_by")

    def get_context_data(self, **kwargs):
        version = self.object
        previous = (
            ReportVersion.objects.filter(definition=version.definition, number__lt=version.number)
            .order_by("-number")
            .first()
        )
        rows = _settings_rows(version.snapshot)
        before = dict(_settings_rows(previous.snapshot)) if previous else {}
        lines = [(label, text, previous is not None and before.get(label) != text)
                 for label, text in rows]  # fmt: skip
        return {**super().get_context_data(**kwargs), "lines": lines, "previous": previous}


class DefinitionShowView(ScopedViewMixin, DetailView):
    """The definition's current version as an HTML table with its graph, paged."""

    model = ReportDefinition
    template_name = "reports/definition_show.html"
    context_object_name = "definition"

    def get_context_data(self, **kwargs):
        definition = self.object
        context = super().get_context_data(**kwargs)
        version = actions.current_version(definition)
        principal = engine.within(self.request.user, definition.organisation)
        page = int_param(self.request, "page", 1, 1, 100_000)
        try:
            spec = engine.spec_of(principal, version.snapshot)
            result = engine.table(principal, spec, definition.name)
        except ValueError as exc:
            return {**context, "error": f"This report cannot be shown: {exc}.", "version": version}
        offset = (page - 1) * SHOW_PAGE
        rows = list(islice(result.rows, offset, offset + SHOW_PAGE + 1))
        chart = None
        if result.chart is not None:
            series, labels, unit = result.chart
            chart = charts.line_chart(definition.name, labels, series, unit or "value")
        cell = _shown
        context.update(
            version=version,
            result=result,
            headings=[h for _k, h in result.columns],
            cells=[[cell(row.get(k)) for k, _h in result.columns] for row in rows[:SHOW_PAGE]],
            page=page,
            has_next=len(rows) > SHOW_PAGE,
            chart=chart,
            chart_rows=len(result.head),
            formats=RunFormat.choices,
        )
        return context


def _shown(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if hasattr(value, "astimezone"):
        return f"{value.astimezone(local_zone()):%Y-%m-%d %H:%M}"
    return str(value)


class DefinitionRunView(ScopedViewMixin, DetailView):
    """POST: run the definition's current version into a file in the background."""

    model = ReportDefinition
    http_method_names = ["post", "options"]

    def post(self, request, *args, **kwargs):
        definition = self.get_object()
        if not request.user.has_perm("reports.add_reportrun"):
            raise PermissionDenied("You may not run reports.")
        fmt = request.POST.get("fmt", "")
        if fmt not in RunFormat.values:
            messages.error(request, f"Choose a format: {', '.join(RunFormat.values)}.")
            return redirect("reports:definition", pk=definition.pk)
        run = actions.queue_run(definition, request.user, fmt)
        audit.record(
            "export",
            user=request.user,
            obj=definition,
            detail=f"report {definition.name} v{definition.version} {fmt}, run {run.pk}",
        )
        return redirect("reports:run", pk=run.pk)


class DefinitionDeleteView(ScopedViewMixin, TemplateView):
    """Confirm, then delete a definition with its versions, runs and schedules."""

    model = ReportDefinition
    scope_action = "delete"
    template_name = "reports/definition_confirm_delete.html"

    def get(self, request, *args, **kwargs):
        definition = get_object_or_404(self.scoped_queryset(), pk=kwargs["pk"])
        return self.render_to_response({"definition": definition})

    def post(self, request, *args, **kwargs):
        definition = get_object_or_404(self.scoped_queryset(), pk=kwargs["pk"])
        with transaction.atomic():
            audit.record("delete", user=request.user, obj=definition, detail=definition.name)
            actions.delete_definition(definition)
        messages.success(request, f"{definition.name} deleted.")
        return redirect("reports:definitions")


class RunMixin(ScopedViewMixin):
    model = ReportRun

    def get_queryset(self):
        return super().get_queryset().select_related("definition", "version", "requested_by")


class RunView(RunMixin, DetailView):
    """A run: progress (the page polls it), its version, the download when ready."""

    template_name = "reports/run.html"
    context_object_name = "run"

    def get_context_data(self, **kwargs):
        deliveries = self.object.deliveries.select_related("recipient")
        return {**super().get_context_data(**kwargs), "deliveries": deliveries}


def run_status(run: ReportRun) -> dict:
    return {
        "id": run.pk,
        "status": run.status,
        "status_label": run.get_status_display(),
        "rows_done": run.rows_done,
        "percent": 100 if run.status == ExportStatus.DONE else 0,
        "error": run.error,
        "download": reverse("reports:run-download", args=[run.pk])
        if run.status == ExportStatus.DONE
        else None,
    }


class RunStatusView(RunMixin, DetailView):
    def get(self, request, *args, **kwargs):
        return JsonResponse(run_status(self.get_object()))


def run_file_response(run: ReportRun) -> FileResponse:
    path = run_path(run)
    if path is None:
        raise Http404("the report file is not ready or gone")
    content_type, ext = FORMATS[run.fmt]
    name = f"{slugify(run.version.snapshot.get('name', '')) or 'report'}-{run.pk}.{ext}"
    return FileResponse(
        open(path, "rb"),  # noqa: SIM115 (FileResponse closes it)
        as_attachment=True,
        filename=name,
        content_type=content_type,
    )


class RunDownloadView(RunMixin, DetailView):
    def get(self, request, *args, **kwargs):
        run = self.get_object()
        response = run_file_response(run)
        audit.record("export", user=request.user, obj=run, detail=f"report run {run.pk} download")
        return response


class ScheduleEditView(ScopedViewMixin, TemplateView):
    """Create a schedule of a definition (`definition` pk) or change one (`pk`), with its
    delivery log (failed deliveries first)."""

    model = ReportSchedule
    template_name = "reports/schedule_form.html"

    def get_permission_required(self):
        if self.editing and self.request.method in ("GET", "HEAD"):
            return ["reports.view_reportschedule"]  # the schedule and its delivery log
        return [f"reports.{'change' if self.editing else 'add'}_reportschedule"]

    @property
    def editing(self) -> bool:
        return self.request.resolver_match.url_name == "schedule"

    def objects(self):
        user = self.request.user
        if self.editing:
            schedule = get_object_or_404(
                ReportSchedule.objects.restrict(user, "view").select_related("definition"),
                pk=self.kwargs["pk"],
            )
            return schedule, schedule.definition
        definition = get_object_or_404(
            ReportDefinition.objects.restrict(user, "view"), pk=self.kwargs["pk"]
        )
        return None, definition

    def context(self, form, schedule, definition):
        deliveries = (
            ReportDelivery.objects.restrict(self.request.user, "view")
            .filter(schedule=schedule)
            .select_related("run")
            .order_by("-created_at")[:50]
            if schedule
            else []
        )
        return {"form": form, "schedule": schedule, "definition": definition,
                "deliveries": deliveries, "zone": local_zone().key}  # fmt: skip

    def get(self, request, *args, **kwargs):
        schedule, definition = self.objects()
        form = ReportScheduleForm(instance=schedule, user=request.user, definition=definition)
        return self.render_to_response(self.context(form, schedule, definition))

    def post(self, request, *args, **kwargs):
        schedule, definition = self.objects()
        if (
            schedule is not None
            and not ReportSchedule.objects.restrict(request.user, "change")
            .filter(pk=schedule.pk)
            .exists()
        ):
            raise Http404("no such schedule")
        before = audit.snapshot(schedule) if schedule else None
        form = ReportScheduleForm(
            request.POST, instance=schedule, user=request.user, definition=definition
        )
        if form.is_valid():
            try:
                with transaction.atomic():
                    saved = actions.save_schedule(
                        form.save(commit=False), request.user, form.cleaned_data["recipients"]
                    )
                    account_actions.record_saved(saved, acting_user=request.user, before=before)
            except OutOfScope as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Schedule saved: {saved.describe()}.")
                return redirect("reports:definition", pk=definition.pk)
        return self.render_to_response(self.context(form, schedule, definition))


class ScheduleDeleteView(ScopedViewMixin, TemplateView):
    """Confirm, then delete a schedule (its beat entry goes; runs and deliveries stay)."""

    model = ReportSchedule
    scope_action = "delete"
    template_name = "reports/schedule_confirm_delete.html"

    def get(self, request, *args, **kwargs):
        schedule = get_object_or_404(self.scoped_queryset(), pk=kwargs["pk"])
        return self.render_to_response({"schedule": schedule})

    def post(self, request, *args, **kwargs):
        schedule = get_object_or_404(self.scoped_queryset(), pk=kwargs["pk"])
        definition_id = schedule.definition_id
        with transaction.atomic():
            audit.record("delete", user=request.user, obj=schedule, detail=str(schedule))
            actions.delete_schedule(schedule)
        messages.success(request, "Schedule deleted.")
        return redirect("reports:definition", pk=definition_id)
