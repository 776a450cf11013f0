"""Vending scope: the organisation filter of every app, plus the station for clerks.

A clerk (someone who may sell but is no supervisor) sees only the sales, shifts and
tokens of the stations they are assigned to, and whatever they sold themselves (a clerk
who left a station, a payment system); supervisors (administrators, superusers and
holders of `vending.reverse_sale`) and read-only roles see the organisation's. The rule
lives in the queryset, so the API, the pages and the admin all apply it.
"""

from __future__ import annotations

from django.db.models import Q

from accounts import roles
from accounts.scoping import ScopedQuerySet

REVERSE_PERMISSION = "vending.reverse_sale"
MANAGEMENT_PERMISSION = "vending.issue_management_token"


def is_supervisor(user) -> bool:
    """Administrators, superusers and holders of `vending.reverse_sale` supervise vending."""
    if not user or not user.is_authenticated or not user.is_active:
        return False
    cache = user.__dict__.setdefault("_ami_vending", {})
    if "supervisor" not in cache:
        cache["supervisor"] = (
            user.is_superuser
            or user.groups.filter(name=roles.ADMINISTRATOR).exists()
            or user.has_perm(REVERSE_PERMISSION)
        )
    return cache["supervisor"]


def may_issue_management_tokens(user) -> bool:
    return is_supervisor(user) or bool(user and user.has_perm(MANAGEMENT_PERMISSION))


def is_station_bound(user) -> bool:
    """A clerk: may sell, is no supervisor; sees only their own stations' rows."""
    return bool(user and user.is_authenticated) and (
        user.has_perm("vending.add_sale") and not is_supervisor(user)
    )


class StationScopedQuerySet(ScopedQuerySet):
    """Organisation scope plus, for clerks, their stations' rows (`model.station_field`);
    they also see (never change) the rows they sold or worked themselves (`seller_field`)."""

    def restrict(self, user, action: str = "view"):
        queryset = super().restrict(user, action)
        if is_station_bound(user):
            # A subquery, not a join on the clerks: a join would repeat each row per clerk.
            stations = user.vending_stations.values("pk")
            at_station = Q(**{f"{self.model.station_field}__in": stations})
            if action == "view":
                at_station |= Q(**{self.model.seller_field: user})
            queryset = queryset.filter(at_station)
        return queryset
