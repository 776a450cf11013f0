"""Dashboard pages of vending (under /vending/)."""

from django.urls import path

from . import views

app_name = "vending"
urlpatterns = [
    path("", views.CounterView.as_view(), name="counter"),
    path("counter/<str:what>/", views.CounterActionView.as_view(), name="counter-action"),
    path("sales/", views.SaleListView.as_view(), name="sale-list"),
    path("sales/<uuid:reference>/", views.SaleDetailView.as_view(), name="sale-detail"),
    path("sales/<uuid:reference>/receipt.<str:fmt>", views.ReceiptView.as_view(), name="receipt"),
    path("sales/<uuid:reference>/<str:what>/", views.SaleActionView.as_view(), name="sale-action"),
    path("accounts/", views.AccountListView.as_view(), name="account-list"),
    path("accounts/<int:pk>/", views.AccountDetailView.as_view(), name="account-detail"),
    path(
        "accounts/<int:pk>/management-token/",
        views.ManagementTokenView.as_view(),
        name="management-token",
    ),
]
