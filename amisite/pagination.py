"""API paging: 50 rows by default, `page_size` up to 1000; a page size that is not a whole
number of at least 1 (`page_size=null`) is a 400, not the default page."""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request):
        text = request.query_params.get(self.page_size_query_param)
        if text is not None and not (text.isascii() and text.isdigit() and int(text) >= 1):
            raise ValidationError({self.page_size_query_param: "a whole number from 1"})
        return super().get_page_size(request)
