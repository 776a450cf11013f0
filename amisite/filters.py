"""API filter backends of our own (see amisite/api_contract.py for unknown parameters)."""

from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter as DrfOrderingFilter


class OrderingFilter(DrfOrderingFilter):
    """DRF's ordering, but a field it cannot order by is a 400 instead of being dropped."""

    def remove_invalid_fields(self, queryset, fields, view, request):
        valid = super().remove_invalid_fields(queryset, fields, view, request)
        invalid = [f for f in fields if f not in valid]
        if invalid:
            raise ValidationError({self.ordering_param: f"cannot order by {', '.join(invalid)}"})
        return valid
