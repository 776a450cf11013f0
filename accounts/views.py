"""Pages of the accounts app: the searchable activity log."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse_lazy
from django.views.generic import ListView

from . import audit, tokens
from .mixins import ScopedViewMixin
from .models import ActivityLog, ApiToken
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


class PasswordChangeView(auth_views.PasswordChangeView):
    """Every signed-in user changes its own password here (not only staff, in the admin).

    The session stays signed in; every API token and other session of the user stops
    working (tokens and sessions are bound to the password), and open websockets close.
    """

    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:tokens")

    def form_valid(self, form):
        response = super().form_valid(form)
        audit.record("password_changed", user=self.request.user, obj=self.request.user)
        revoke_sockets(self.request.user.pk)
        messages.success(self.request, "Password changed: your API tokens no longer work.")
        return response


class TokenListView(LoginRequiredMixin, ListView):
    """Your API tokens: issue one (its key is shown once), revoke any."""

    template_name = "accounts/tokens.html"
    context_object_name = "tokens"

    def get_queryset(self):
        return ApiToken.objects.filter(user=self.request.user)

    def post(self, request):
        if "revoke" in request.POST:
            token = get_object_or_404(ApiToken, pk=request.POST["revoke"], user=request.user)
            tokens.revoke_token(token, acting_user=request.user)
            messages.success(request, f"Token {token.prefix}… revoked.")
            return redirect("accounts:tokens")
        token, key = tokens.issue_token(request.user, name=request.POST.get("name", ""))
        self.object_list = self.get_queryset()
        context = self.get_context_data(new_key=key, new_token=token)
        return self.render_to_response(context)
