"""Pages of the accounts app: the searchable activity log."""

from django.contrib.auth import views as auth_views
from django.db.models import Q
from django.views.generic import ListView

from .mixins import ScopedViewMixin
from .models import ActivityLog
from .sessions import revoke_sockets


class ActivityLogView(ScopedViewMixin, ListView):
    """Who did what, when and from where, within the user's scope; read-only."""

    model = ActivityLog
    paginate_by = 100
    template_name = "accounts/activity_log.html"

    def get_queryset(self):
        queryset = self.scoped_queryset()
        q = self.request.GET.get("q", "").strip()
        if q:
            queryset = queryset.filter(
                Q(username__icontains=q)
                | Q(object_repr__icontains=q)
                | Q(action__icontains=q)
                | Q(detail__icontains=q)
            )
        outcome = self.request.GET.get("outcome")
        if outcome:
            queryset = queryset.filter(outcome=outcome)
        return queryset

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        params = self.request.GET.copy()
        params.pop("page", None)
        context["query"] = params.urlencode()
        return context


class LogoutView(auth_views.LogoutView):
    """Sign out, and close the user's open websockets (they were authorised by this session)."""

    def post(self, request, *args, **kwargs):
        user_id = request.user.pk if request.user.is_authenticated else None
        response = super().post(request, *args, **kwargs)
        if user_id is not None:
            revoke_sockets(user_id)
        return response
