"""Root URLs: dashboard, accounts, admin, API and its schema."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.views import LogoutView

from . import observability, views

urlpatterns = [
    path("", views.home, name="home"),
    path("", include("meters.urls")),
    path("", include("accounts.urls")),
    path("", include("collection.urls")),
    path("", include("loadcontrol.urls")),
    path("vending/", include("vending.urls")),
    path("portal/", include("portal.urls")),
    path("", include("reports.urls")),  # /reports/..., and /vending/reports/
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", include("amisite.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Behind login like the schema it shows (an anonymous browser is sent to sign in).
    path(
        "api/docs/",
        login_required(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", observability.metrics_view, name="metrics"),
    path("favicon.ico", views.favicon, name="favicon"),
]

handler500 = "amisite.views.server_error"
