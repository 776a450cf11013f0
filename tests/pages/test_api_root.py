"""`/api/` lists every resource of every router (it listed 3 of ~25)."""

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver
from rest_framework.routers import BaseRouter

pytestmark = pytest.mark.django_db


def registered_prefixes() -> set[str]:
    """Every resource registered on any router of any module included under /api/."""
    api = next(p for p in get_resolver().url_patterns if str(p.pattern) == "api/")
    found = set()
    for include in api.url_patterns:
        if not isinstance(include, URLResolver):
            continue
        for router in vars(include.urlconf_module).values():
            if isinstance(router, BaseRouter):
                found |= {str(include.pattern) + prefix for prefix, *_ in router.registry}
    return found


def test_the_api_root_lists_every_registered_resource(world):
    client = Client()
    client.force_login(world.operator_a)
    listed = client.get("/api/", HTTP_ACCEPT="application/json").json()
    expected = registered_prefixes()
    assert len(expected) >= 20
    assert expected <= set(listed), expected - set(listed)
    for key in ("token", "vending/payments", "schema", "docs"):
        assert key in listed
    for key, url in listed.items():
        assert url.startswith("http://testserver/api/"), (key, url)
