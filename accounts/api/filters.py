"""The one filter mechanism of the API: every choice a filter offers is in the caller's scope.

A relation filter (`?meter=7`, `?organisation=3`) takes its choices through `restrict()`,
so the browsable API's filter form lists only what the caller may see, and a foreign id
is answered exactly like one that does not exist ("Select a valid choice", 400): the
filter is no oracle for what exists elsewhere. Every viewset's filters go through
`ScopedFilterBackend`, which builds `filterset_fields` on `ScopedFilterSet` and refuses a
`filterset_class` that is not one.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django_filters.filters import BooleanFilter, QuerySetRequestMixin
from django_filters.rest_framework import DjangoFilterBackend, FilterSet

# What a boolean filter takes (django-filter's widget quietly turns anything else into
# "no filter", which would answer the whole list as if it were the filtered one).
BOOLEAN_VALUES = {"true", "false", "1", "0"}
# Related models whose rows are the same for every caller (no organisation): shown as is.
GLOBAL_MODELS = {"auth.group", "auth.permission", "contenttypes.contenttype"}


def scoped_choices(queryset, user):
    """`queryset` restricted to what `user` may see (refused when the model cannot say)."""
    label = queryset.model._meta.label_lower
    if hasattr(queryset, "restrict"):
        return queryset.restrict(user, "view")
    if label in GLOBAL_MODELS:
        return queryset
    raise ImproperlyConfigured(f"a filter offers {label} rows, which have no restrict()")


class ScopedFilterSet(FilterSet):
    """Relation filters choose only among the requesting user's objects; a boolean filter
    refuses a value that is no boolean (400), as every other filter refuses an invalid one."""

    def is_valid(self) -> bool:
        valid = super().is_valid()
        for name, declared in self.filters.items():
            raw = self.data.get(name) if self.data is not None else None
            if isinstance(declared, BooleanFilter) and raw not in (None, ""):
                if str(raw).lower() not in BOOLEAN_VALUES:
                    self.form.add_error(name, f"{raw!r} is no boolean: use true or false")
                    valid = False
        return valid

    def __init__(self, data=None, queryset=None, *, request=None, prefix=None):
        super().__init__(data, queryset, request=request, prefix=prefix)
        user = getattr(request, "user", None)
        for relation in self.filters.values():  # this instance's own copies
            if isinstance(relation, QuerySetRequestMixin):
                choices = relation.get_queryset(request)
                if choices is not None:
                    relation.queryset = scoped_choices(choices, user)


class ScopedFilterBackend(DjangoFilterBackend):
    filterset_base = ScopedFilterSet

    def get_filterset_class(self, view, queryset=None):
        filterset_class = super().get_filterset_class(view, queryset)
        if filterset_class is not None and not issubclass(filterset_class, ScopedFilterSet):
            raise ImproperlyConfigured(
                f"{type(view).__name__}.filterset_class must subclass ScopedFilterSet"
            )
        return filterset_class
