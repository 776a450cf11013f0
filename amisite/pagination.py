"""API paging: 50 rows by default, `page_size` up to 1000; a page size that is not a whole
number of at least 1 (`page_size=null`) is a 400, not the default page.

Logs that grow while they are read (the file exchange log) page by cursor (`CursorPaging`):
`next`/`previous` links carry an opaque `cursor`, newest first, so a row written meanwhile
never shifts a page or shows twice; a cursor this API did not give is a 400.

Readings, events and billing determinants page by key (`KeysetPaging`): in an index's
order, forward only, each page read by key after the last key of the page before."""

from django.core import signing
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import BasePagination, CursorPagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param


def _checked_page_size(paginator, request):
    text = request.query_params.get(paginator.page_size_query_param)
    if text is not None and not (text.isascii() and text.isdigit() and int(text) >= 1):
        raise ValidationError({paginator.page_size_query_param: "a whole number from 1"})


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request):
        _checked_page_size(self, request)
        return super().get_page_size(request)


class CursorPaging(CursorPagination):
    """Newest first by id (unique and increasing: a stable cursor position)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = ("-id",)

    def get_page_size(self, request):
        _checked_page_size(self, request)
        return super().get_page_size(request)

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError(
                {self.cursor_query_param: "not a cursor this list gave"}
            ) from None


def split_page(rows: list, size: int) -> tuple[list, object]:
    """A page of `size + 1` fetched rows: (the page, its last row when more follow, else None)."""
    page = rows[:size]
    return page, (page[-1] if len(rows) > size else None)


class KeysetPaging(BasePagination):
    """Paging by a key (the store's readings and events, billing determinants by meter).

    Each page is the next `page_size` rows after the last key of the page before, in the
    order of an index (`meter_id, group, ts` for intervals...), so a page is one index range
    scan however deep it is, and rows written meanwhile before the position never shift a
    page. Forward only: `next` carries an opaque `cursor`, signed, so a cursor this API did
    not give (forged, garbled, another list's) is a 400 rather than a position.

    The view reads `position(request)` (None on the first page), fetches `page_size + 1`
    rows after it and answers `response(results, last_key_or_None)`."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000
    cursor_query_param = "cursor"

    def __init__(self, name: str = ""):
        self.salt = f"amisite.pagination.keyset:{name}"
        self.request = None

    def get_page_size(self, request) -> int:
        _checked_page_size(self, request)
        text = request.query_params.get(self.page_size_query_param)
        return min(int(text), self.max_page_size) if text else self.page_size

    def position(self, request) -> list | None:
        """The key after which this page starts (JSON values as the view encoded them)."""
        self.request = request
        text = request.query_params.get(self.cursor_query_param)
        if not text:
            return None
        try:
            key = signing.loads(text, salt=self.salt)
        except (signing.BadSignature, ValueError, UnicodeError):
            key = None
        if not isinstance(key, list) or not key:
            raise ValidationError({self.cursor_query_param: "not a cursor this list gave"})
        return key

    def response(self, results: list, last_key: list | None, **extra) -> Response:
        """The page; `last_key` (JSON values) when more rows follow, else None."""
        link = None
        if last_key is not None:
            cursor = signing.dumps(last_key, salt=self.salt, compress=True)
            url = self.request.build_absolute_uri()
            link = replace_query_param(url, self.cursor_query_param, cursor)
        return Response({"next": link, **extra, "results": results})

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "the `next` link's cursor (opaque; a forged one is a 400)",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"rows per page (default {self.page_size}, at most "
                f"{self.max_page_size})",
                "schema": {"type": "integer"},
            },
        ]

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["next", "results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }
