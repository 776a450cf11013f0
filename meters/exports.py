"""Registry export and import pages (the column spec and formats live in `registry_io`)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.views.generic import TemplateView

from accounts import actions
from accounts.mixins import ScopedViewMixin

from .models import Meter
from .registry_io import (
    CATALOGUE_COLUMNS,
    COLUMNS,
    FORMATS,
    catalogue_export_response,
    export_response,
    import_catalogue,
    import_registry,
)

WHAT = ("meters", "catalogue")
CATALOGUE_WRITE = ("meters.add_metermodel", "meters.change_metermodel")


@login_required
def export_meters(request, fmt):
    """`/meters/export.<fmt>`: the user's meters (same `q`/`status` filters as the list).

    `?what=catalogue`: the meter models the user may see, one row per channel.
    """
    if fmt not in FORMATS:
        raise Http404(f"unknown export format {fmt!r}")
    catalogue = request.GET.get("what") == "catalogue"
    if not request.user.has_perm("meters.view_metermodel" if catalogue else "meters.view_meter"):
        actions.record_denied(request.user, "page_denied", detail=request.path)
        raise PermissionDenied
    if catalogue:
        return catalogue_export_response(request.user, fmt)
    return export_response(request.user, fmt, request.GET)


class MeterImportView(ScopedViewMixin, TemplateView):
    """Upload a registry file, optionally as a dry run; see per-row errors or a summary."""

    model = Meter
    scope_action = "add"
    template_name = "meters/import.html"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "formats": FORMATS, "whats": WHAT,
                "columns": [c for c in COLUMNS],
                "catalogue_columns": [c for c in CATALOGUE_COLUMNS]}  # fmt: skip

    def post(self, request, *args, **kwargs):
        """Field `what`: `meters` (default) or `catalogue` (meter models with channels)."""
        upload = request.FILES.get("file")
        dry_run = bool(request.POST.get("dry_run"))
        what = request.POST.get("what") or "meters"
        context = self.get_context_data(dry_run=dry_run, what=what)
        if what not in WHAT:
            context["form_error"] = f"Unknown kind of file {what!r}."
            return self.render_to_response(context, status=400)
        if what == "catalogue" and not any(request.user.has_perm(p) for p in CATALOGUE_WRITE):
            actions.record_denied(request.user, "page_denied", detail=request.path)
            raise PermissionDenied
        if upload is None:
            context["form_error"] = "Choose a file to import."
            return self.render_to_response(context, status=400)
        fmt = request.POST.get("format") or None
        run = import_catalogue if what == "catalogue" else import_registry
        result = run(upload, fmt, request.user, dry_run=dry_run)
        context["result"] = result
        return self.render_to_response(context, status=200 if result.ok else 400)
