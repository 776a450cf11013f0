"""API paging: 50 rows by default, `page_size` up to 1000; a page size that is not a whole
number of at least 1 (`page_size=null`) is a 400, not the default page.

Logs that grow while they are read (the file exchange log) page by cursor (`CursorPaging`):
`next`/`previous` links carry an opaque `cursor`, newest first, so a row written meanwhile
never shifts a page or shows twice; a cursor this API did not give is a 400."""

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination


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
