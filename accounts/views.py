"""Pages of the accounts app: activity log, password, API tokens, the second factor."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core import signing
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.generic import ListView, TemplateView

from . import tokens, two_factor
from .mixins import ScopedViewMixin
from .models import ActivityLog, ApiToken, RecoveryCode
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
        response = super().form_valid(form)  # the save writes the activity row (audit.py)
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


def _next_url(request) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or "/"
    if url_has_allowed_host_and_scheme(wanted, {request.get_host()}, request.is_secure()):
        return wanted
    return "/"


class TwoFactorView(LoginRequiredMixin, TemplateView):
    """After the password: a code from the authenticator (or a recovery code) signs in."""

    template_name = "accounts/two_factor.html"

    def get(self, request, *args, **kwargs):
        if two_factor.device_of(request.user) is None and not two_factor.is_verified(request):
            if two_factor.required(request.user):
                return redirect(f"{reverse('accounts:two-factor-enrol')}?next={_next_url(request)}")
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        user = self.request.user
        return {
            **super().get_context_data(**kwargs),
            "next": _next_url(self.request),
            "device": two_factor.device_of(user),
            "verified": two_factor.is_verified(self.request),
            "required": two_factor.required(user),
            "codes_left": RecoveryCode.objects.filter(user=user, used_at__isnull=True).count(),
        }

    def post(self, request):
        if two_factor.verify(request.user, request.POST.get("code", "")):
            two_factor.mark_verified(request)
            return redirect(_next_url(request))
        messages.error(request, "That code is not right (or was used already). Try the next one.")
        return redirect(f"{reverse('accounts:two-factor')}?next={_next_url(request)}")


class TwoFactorEnrolView(LoginRequiredMixin, TemplateView):
    """Set up an authenticator: scan the QR code, confirm one code, keep the recovery codes.

    The new secret travels signed in the form (bound to the user, valid 15 minutes), so
    showing the page stores nothing. Replacing an authenticator needs this session past the
    second factor first, so a password alone cannot swap it for another.
    """

    template_name = "accounts/two_factor_enrol.html"
    MAX_AGE = 15 * 60

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and two_factor.device_of(request.user):
            if not two_factor.is_verified(request):
                return redirect(f"{reverse('accounts:two-factor')}?next={_next_url(request)}")
        return super().dispatch(request, *args, **kwargs)

    def _salt(self) -> str:
        return f"ami-second-factor-enrol:{self.request.user.pk}"

    def get_context_data(self, **kwargs):
        secret = two_factor.new_secret()
        uri = two_factor.otpauth_uri(self.request.user, secret)
        return {
            **super().get_context_data(**kwargs),
            "qr_svg": mark_safe(two_factor.qr_svg(uri)),  # drawn here from our own text
            "secret": two_factor.base32(secret),
            "signed_secret": signing.dumps(secret, salt=self._salt()),
            "next": _next_url(self.request),
        }

    def post(self, request):
        try:
            secret = signing.loads(
                request.POST.get("secret", ""), salt=self._salt(), max_age=self.MAX_AGE
            )
        except signing.BadSignature:
            secret = None
        codes = secret and two_factor.enrol(request.user, secret, request.POST.get("code", ""))
        if not codes:
            messages.error(request, "That code does not match: scan the QR code and try again.")
            return redirect(f"{reverse('accounts:two-factor-enrol')}?next={_next_url(request)}")
        two_factor.mark_verified(request)
        return self.render_to_response({"recovery_codes": codes, "next": _next_url(request)})
