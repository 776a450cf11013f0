"""Registry export pages (placeholder until registry_io lands)."""

from django.http import Http404


def export_meters(request, fmt):
    raise Http404("not yet")
