"""Every list endpoint's relation filters offer only the caller's objects (JSON and HTML).

Generated over the API's URL patterns: for each list endpoint, the browsable API page
(Accept: text/html, which renders the filter form) names nothing of the other region,
and for each relation filter a foreign id is answered exactly like an id that does not
exist. A meta-test fails when a relation filter's model has no foreign row in the world
below to try.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.html import escape
from django_filters.filters import BooleanFilter, QuerySetRequestMixin
from rest_framework.test import APIClient, APIRequestFactory, force_authenticate

from accounts.api.filters import ScopedFilterBackend

pytestmark = pytest.mark.django_db


def _list_endpoints():
    """(route, viewset class) of every API list route."""
    found = []

    def walk(patterns, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                callback = pattern.callback
                actions = getattr(callback, "actions", None) or {}
                route = prefix + str(pattern.pattern)
                if actions.get("get") == "list" and "<" not in route and "(?P" not in route:
                    route = route.replace("^", "").replace("$", "")
                    if route.startswith("api/") and "\\." not in route:
                        found.append(("/" + route, callback.cls))

    walk(get_resolver().url_patterns, "")
    return sorted(set(found), key=lambda item: item[0])


ENDPOINTS = _list_endpoints()


def _populate(world):
    """Rows of every kind in both organisations (the admin meta-test's builders)."""
    from collection.models import ReadJob
    from meters.alarms.models import AlarmRule
    from meters.models import MeterModel
    from reports.models import ReportDefinition
    from tests.accounts.test_admin_scoping import _collection_rows, _vending
    from tests.meters.alarms.helpers import alarm_rows
    from tests.reports.engine_data import both_regions
    from vending.models import Tariff

    # Each builder once: a test may already have made some of these rows itself.
    if not Tariff.objects.filter(code="OWN").exists():
        _vending(world)
    if not AlarmRule.objects.exists():
        alarm_rows(world)
    if not ReadJob.objects.exists():
        _collection_rows(world)
    if not ReportDefinition.objects.exists():
        both_regions(world)
    MeterModel.objects.get_or_create(manufacturer="South", name="SB-own", organisation=world.org_b)


def _relation_filters(url, view_class, user):
    """(name, related model's queryset) of every relation filter of the endpoint."""
    request = APIRequestFactory().get(url)
    force_authenticate(request, user)
    view = view_class(action_map={"get": "list"}, format_kwarg=None, kwargs={}, args=())
    view.request = view.initialize_request(request)
    queryset = view.get_queryset()
    filterset_class = ScopedFilterBackend().get_filterset_class(view, queryset)
    if filterset_class is None:
        return []
    out = []
    for name, relation in filterset_class.base_filters.items():
        if isinstance(relation, QuerySetRequestMixin):
            out.append((name, relation.get_queryset(view.request)))
    return out


def _foreign_labels(world, scoped_user):
    """Names of the other region's objects that no object of the caller's region shares."""
    b = world.grid_b
    labels = {m.serial for m in b.meters} | {c.name for c in b.customers}
    labels |= {c.account_number for c in b.customers}
    labels |= {world.org_b.name, world.operator_b.username, world.admin_b.username}
    return labels


@pytest.mark.parametrize("url,view_class", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_filters_offer_only_the_callers_objects(world, url, view_class):
    _populate(world)
    user = world.admin_a
    client = APIClient()
    client.force_authenticate(user)
    html = client.get(url, HTTP_ACCEPT="text/html")
    assert html.status_code == 200, (url, html.status_code)
    text = html.content.decode()
    for label in _foreign_labels(world, user):
        assert escape(label) not in text, f"{url} (HTML) shows {label!r}"
    for name, choices in _relation_filters(url, view_class, user):
        model = choices.model
        scoped = model.objects.restrict(user, "view") if hasattr(choices, "restrict") else None
        if scoped is None:
            continue  # a global catalogue (roles): the same for everybody
        mine = {str(o) for o in scoped}
        foreign = list(model._default_manager.exclude(pk__in=scoped.values("pk")))
        assert foreign, f"{url}?{name}=: the world has no foreign {model.__name__} to try"
        for obj in foreign:
            if str(obj) not in mine and len(str(obj)) > 3:
                assert escape(str(obj)) not in text, f"{url} filter {name} lists {obj}"
        missing = (model._default_manager.order_by("-pk").first().pk or 0) + 10**6
        with_foreign = client.get(url, {name: foreign[0].pk})
        with_missing = client.get(url, {name: missing})
        assert with_foreign.status_code == with_missing.status_code, (url, name)
        assert with_foreign.json() == with_missing.json(), (url, name)


def test_every_list_endpoint_is_tried():
    assert len(ENDPOINTS) >= 15, ENDPOINTS


def _boolean_filters():
    """(list route, filter name) of every boolean filter of every API list endpoint."""
    found = []
    for route, viewset in _list_endpoints():
        view = viewset()
        view.request, view.format_kwarg, view.action = None, None, "list"
        filterset = ScopedFilterBackend().get_filterset_class(view, viewset.queryset)
        if filterset is None:
            continue
        for name, declared in filterset.base_filters.items():
            if isinstance(declared, BooleanFilter):
                found.append((route, name))
    return found


def test_there_are_boolean_filters_to_try():
    assert ("/api/vending/stations/", "active") in _boolean_filters()


@pytest.mark.parametrize(("route", "name"), _boolean_filters())
def test_a_boolean_filter_refuses_what_is_no_boolean(world, route, name):
    """`?active=maybe` is a 400 like any invalid value, not the whole list unfiltered."""
    client = APIClient()
    client.force_authenticate(world.superuser)
    refused = client.get(route, {name: "maybe"})
    assert refused.status_code == 400, (route, refused.status_code)
    assert name in refused.json()
    for value in ("true", "false", "1", "0", "True", ""):
        assert client.get(route, {name: value}).status_code == 200, (route, value)
