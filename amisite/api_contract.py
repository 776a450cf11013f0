"""The API's query strings are held to its own schema: an unknown parameter is a 400.

A misspelt filter (`?stauts=active`) or one an endpoint does not have used to be ignored,
so the caller got the whole list and took it for the filtered one. The OpenAPI schema is
what every endpoint declares (filters, search, ordering, paging, its own parameters), so it
is also the list of what a request may send: `QueryContractMiddleware` compares each API
request's query parameters with the operation's declared ones. The schema is generated
once per process, on the first API request. Paths the schema does not describe (the API
root, the schema itself) are not checked.

Values are checked where they are read: paging in `amisite.pagination`, ordering in
`amisite.filters.OrderingFilter`, filters by django-filter.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

from django.http import JsonResponse
from drf_spectacular.generators import SchemaGenerator

# Accepted everywhere: DRF's renderer override (`?format=json`, `?format=api`).
ALWAYS = {"format"}
PREFIX = "/api/"


# One generation per process at a time: a page opens with several API requests at once, and
# drf-spectacular's first generation is not thread-safe (its extensions import their target
# classes lazily; two threads racing there raised AttributeError: a 500 on the first page).
_generating = threading.Lock()


def declared_query_parameters() -> list[tuple[re.Pattern, dict[str, frozenset[str]]]]:
    """(path pattern, {METHOD: declared query parameter names}) for every schema path."""
    if _declared.cache_info().currsize:
        return _declared()
    with _generating:
        return _declared()


@lru_cache(maxsize=1)
def _declared() -> list[tuple[re.Pattern, dict[str, frozenset[str]]]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    routes = []
    for path, item in schema["paths"].items():
        parts = re.split(r"\{[^}]+\}", path)
        pattern = re.compile("^" + "[^/]+".join(re.escape(p) for p in parts) + "$")
        methods = {
            method.upper(): frozenset(
                p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"
            )
            for method, operation in item.items()
            if isinstance(operation, dict)
        }
        routes.append((len(parts), pattern, methods))
    # Literal paths first: /api/meters/export/ before /api/meters/{id}/.
    return [(pattern, methods) for _, pattern, methods in sorted(routes, key=lambda r: r[0])]


def unknown_parameters(path: str, method: str, names) -> list[str] | None:
    """Query parameters the operation does not declare (None: the schema has no such path)."""
    for pattern, methods in declared_query_parameters():
        if pattern.match(path):
            declared = methods.get(method)
            if declared is None:
                return None  # 405 is the view's to answer
            return sorted(set(names) - declared - ALWAYS)
    return None


class QueryContractMiddleware:
    """400 for an API request with a query parameter its operation does not declare."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith(PREFIX) and request.GET:
            method = "GET" if request.method == "HEAD" else request.method
            unknown = unknown_parameters(request.path_info, method, request.GET.keys())
            if unknown:
                return JsonResponse(
                    {"detail": f"unknown query parameter(s): {', '.join(unknown)}"}, status=400
                )
        return self.get_response(request)
