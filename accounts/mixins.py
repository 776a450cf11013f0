"""Base classes for dashboard pages: login, role permission and scoping, in one place."""

from __future__ import annotations

from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin

from . import actions


class ScopedViewMixin(LoginRequiredMixin, PermissionRequiredMixin):
    """Pages list and show only `model.objects.restrict(user, action)`; out of scope is 404."""

    model = None
    scope_action = "view"
    raise_exception = False

    def get_permission_required(self):
        opts = self.model._meta
        return [f"{opts.app_label}.{self.scope_action}_{opts.model_name}"]

    def handle_no_permission(self):
        if self.request.user.is_authenticated:
            actions.record_denied(self.request.user, "page_denied", detail=self.request.path)
        return super().handle_no_permission()

    def get_queryset(self):
        return self.scoped_queryset()

    def scoped_queryset(self):
        base = self.queryset if getattr(self, "queryset", None) is not None else self.model.objects
        return base.all().restrict(self.request.user, self.scope_action)
