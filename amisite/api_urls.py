"""The REST API: every app's router under /api/."""

from django.urls import include, path

from accounts.api.views import TokenView

from .api_root import ApiRootView

urlpatterns = [
    # Before the apps' routers, whose own roots would each list only their resources.
    path("", ApiRootView.as_view(), name="api-root"),
    path("token/", TokenView.as_view(), name="api-token"),
    path("", include("accounts.api.urls")),
    path("", include("meters.api.urls")),
    path("", include("collection.api.urls")),
    path("", include("loadcontrol.api.urls")),
    path("vending/", include("vending.api.urls")),
    path("", include("reports.api.urls")),  # vending/reports/<slug>/
]
