"""REST API routes of the vending app (under /api/vending/)."""

from django.urls import path

from amisite.routers import ApiRouter

from . import views

router = ApiRouter()
router.register("stations", views.VendingStationViewSet)
router.register("keys", views.VendingKeyViewSet)
router.register("tariffs", views.TariffViewSet)
router.register("accounts", views.PrepaidAccountViewSet)
router.register("shifts", views.ShiftViewSet)
router.register("sales", views.SaleViewSet)
router.register("management-tokens", views.ManagementOrderViewSet)
urlpatterns = [
    path("payments/", views.PaymentView.as_view(), name="vending-payment"),
    path("offline-sales/", views.OfflineSaleView.as_view(), name="vending-offline-sale"),
    *router.urls,
]
