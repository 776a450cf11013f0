"""REST API routes of the meters app."""

from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("grid-nodes", views.GridNodeViewSet)
router.register("meter-models", views.MeterModelViewSet)
router.register("channels", views.ChannelViewSet)
router.register("concentrators", views.DataConcentratorViewSet)
router.register("meters", views.MeterViewSet)
router.register("customers", views.CustomerViewSet)
urlpatterns = router.urls
