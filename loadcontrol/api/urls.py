"""REST API routes of the loadcontrol app."""

from amisite.routers import ApiRouter

from . import views

router = ApiRouter()
router.register("commands", views.CommandViewSet)
router.register("bulk-commands", views.BulkCommandViewSet)
router.register("load-schedules", views.LoadScheduleViewSet)
router.register(
    "configuration-drift", views.ConfigurationDriftViewSet, basename="configuration-drift"
)
urlpatterns = router.urls
