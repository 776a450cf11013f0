"""Pages of the accounts app."""

from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("activity/", views.ActivityLogView.as_view(), name="activity"),
    path("account/password/", views.PasswordChangeView.as_view(), name="password"),
    path("account/tokens/", views.TokenListView.as_view(), name="tokens"),
    path("account/two-factor/", views.TwoFactorView.as_view(), name="two-factor"),
    path("account/two-factor/enrol/", views.TwoFactorEnrolView.as_view(), name="two-factor-enrol"),
]
