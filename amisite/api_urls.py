"""The REST API: every app's router under /api/."""

from django.urls import include, path
from rest_framework.authtoken.views import obtain_auth_token

from .api_root import ApiRootView

urlpatterns = [
    # Before the apps' routers, whose own roots would each list only their resources.
    path("", ApiRootView.as_view(), name="api-root"),
    path("token/", obtain_auth_token, name="api-token"),
    path("", include("accounts.api.urls")),
    path("", include("meters.api.urls")),
    path("", include("collection.api.urls")),
    path("vending/", include("vending.api.urls")),
]
