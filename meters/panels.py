"""Panels: the parts of a registry page that another app serves from its own data.

The meter page shows collection's runs, phasors and "Read now"; the meter list offers
collection's "add to read job". Meters imports neither: settings' `AMI_PANELS` names, per
slot of a page, the `Panel` objects the owning apps define, in order (like
`AMI_DEMO_PARTS`: one explicit list, visible in one place). A page renders its slots with
`render_panels`; a panel whose context function answers None is not shown (the app has
nothing to say, or the user may not use it). Without any panels the pages still work: they
show the registry's own data only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.module_loading import import_string

# Slots of the registry pages, where they sit on the page.
METER_INSTRUMENTS = "meter-detail:instruments"  # after the register history
METER_HISTORY = "meter-detail:history"  # after the events
METER_ACTIONS = "meter-detail:actions"  # at the end of the page
METER_LIST_BULK = "meter-list:bulk"  # bulk actions above the meter table
GRID_TREE_OVERLAY = "grid-tree:overlay"  # figures per grid node, drawn on the tree (grid.js)
MAP_OVERLAY = "map:overlay"  # figures per grid node, drawn on the map (map.js)


@dataclass(frozen=True)
class Panel:
    """One part of a page: a template and the function that gives its context.

    `context(request, page_context)` gets what the page knows (the meter, the paginator...)
    and returns the panel's own values, or None to leave the panel out. A bulk panel names
    its `action` (the form's "action" field) and `handle(request, selection)`, which answers
    the POST of that action.
    """

    template: str
    context: Callable[[HttpRequest, Mapping[str, Any]], dict | None]
    action: str = ""
    handle: Callable[[HttpRequest, Any], HttpResponse] | None = None


def panels(slot: str) -> list[Panel]:
    """The panels settings name for one slot, in order."""
    return [import_string(name) for name in settings.AMI_PANELS.get(slot, ())]


def render_panels(slot: str, request: HttpRequest, page_context: Mapping[str, Any]) -> list[str]:
    """Each shown panel of a slot as HTML (rendered with the request: perms, CSRF)."""
    out = []
    for panel in panels(slot):
        own = panel.context(request, page_context)
        if own is not None:
            out.append(render_to_string(panel.template, {**page_context, **own}, request=request))
    return out


def bulk_action(slot: str, name: str | None) -> Panel | None:
    """The panel of a slot that handles the bulk action `name`, if any."""
    for panel in panels(slot):
        if name and panel.action == name and panel.handle is not None:
            return panel
    return None
