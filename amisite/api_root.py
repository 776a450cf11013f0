"""`/api/`: every resource of the REST API, generated from the URL patterns.

Each app has its own router, and a router's root lists only its own resources (the first
one included answered `/api/` with 3 of ~25). This root walks the API's URL patterns and
lists every router's list route, plus the endpoints that are not resources (token, payment,
schema, docs), so a new router or resource appears without anyone remembering to add it.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.response import Response
from rest_framework.reverse import reverse as absolute
from rest_framework.views import APIView

EXTRA = {"token": "api-token", "vending/payments": "vending-payment", "schema": "api-schema",
         "docs": "api-docs", "reports/billing": "reports-billing",
         "reports/billing/by-meter": "reports-billing-by-meter"}  # fmt: skip


def list_routes() -> dict[str, str]:
    """`{"meters": "api-meter-list"...}`: each resource's path below /api/ and its route name."""
    found: dict[str, str] = {}
    api = reverse("api-token").rsplit("token/", 1)[0]  # "/api/"

    def walk(resolver, prefix):
        for p in resolver.url_patterns:
            if isinstance(p, URLResolver):
                walk(p, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and p.name and p.name.endswith("-list"):
                path = "/" + (prefix + str(p.pattern)).replace("^", "").replace("$", "")
                if path.startswith(api) and "<" not in path and "(?P" not in path:
                    found[path[len(api) :].strip("/")] = p.name

    walk(get_resolver(), "")
    return dict(sorted(found.items()))


class ApiRootView(APIView):
    """Every resource of the API (list endpoints), and the other endpoints."""

    schema = None  # not an operation of its own in the OpenAPI schema

    def get(self, request, *args, **kwargs):
        links = {key: absolute(name, request=request) for key, name in list_routes().items()}
        links.update({key: absolute(name, request=request) for key, name in EXTRA.items()})
        return Response(links)
