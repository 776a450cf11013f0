"""Bad input answers 400 and changes nothing, decided at the doors rather than in each view.

- `RejectNulMiddleware`: a NUL character in the path or the query string (`/meters/%00/`,
  `?q=%00`) is refused before any view runs; PostgreSQL cannot hold NUL in text, so it
  would otherwise surface as a 500 from whichever query first used the value.
- `amisite.parsers.JSONParser`: the API's JSON bodies nest at most `MAX_JSON_DEPTH` levels
  (a deeply nested body made the parser recurse until `RecursionError`).
- `api_exception_handler` (DRF) and `BadInputMiddleware` (pages): a Django
  `ValidationError` raised by a model while saving (a tree node moved below itself) or a
  database `DataError` (a value longer than its column, out of range) is the caller's bad
  input: 400 with the reason. Whatever the view had written is rolled back by the atomic
  block the error left.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import HttpResponseBadRequest, JsonResponse
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

log = logging.getLogger(__name__)

NUL = "\x00"
TOO_LONG = "a value is too long or out of range for what it is stored in"


def int_param(request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter held to [low, high]; a malformed one is the default."""
    try:
        return min(max(int(request.GET.get(name, default)), low), high)
    except ValueError:
        return default


def _has_nul(request) -> bool:
    if NUL in request.path_info:
        return True
    return any(NUL in key or any(NUL in v for v in values) for key, values in request.GET.lists())


def _wants_json(request) -> bool:
    return request.path_info.startswith("/api/") or "json" in request.headers.get("Accept", "")


def bad_request(request, message: str):
    if _wants_json(request):
        return JsonResponse({"detail": message}, status=400)
    return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")


class RejectNulMiddleware:
    """400 for a NUL character anywhere in the path or the query string."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _has_nul(request):
            return bad_request(request, "the address contains a NUL character")
        return self.get_response(request)


def _validation_detail(exc: DjangoValidationError):
    if hasattr(exc, "error_dict"):
        return {field: [str(m) for m in errors] for field, errors in exc.message_dict.items()}
    return {"detail": [str(m) for m in exc.messages]}


def api_exception_handler(exc, context):
    """DRF's handler, plus model validation and data errors as 400 (see the module doc)."""
    if isinstance(exc, DjangoValidationError):
        return Response(_validation_detail(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DataError):
        log.warning("bad input reached the database: %s", exc)
        return Response(
            {"detail": TOO_LONG},
            status=status.HTTP_400_BAD_REQUEST,
        )
    return drf_exception_handler(exc, context)


class BadInputMiddleware:
    """Pages: the same two errors as `api_exception_handler`, answered 400."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exc):
        if isinstance(exc, DjangoValidationError):
            detail = _validation_detail(exc)
            return bad_request(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in detail.items()))
        if isinstance(exc, DataError):
            log.warning("bad input reached the database: %s", exc)
            return bad_request(request, TOO_LONG)
        return None
