"""REST API routes of the meters app."""

from django.urls import path

from amisite.routers import ApiRouter

from . import readings, registry_io, views

router = ApiRouter()
router.register("grid-nodes", views.GridNodeViewSet)
router.register("meter-models", views.MeterModelViewSet)
router.register("channels", views.ChannelViewSet)
router.register("concentrators", views.DataConcentratorViewSet)
router.register("meters", views.MeterViewSet)
router.register("customers", views.CustomerViewSet)
router.register("desired-configurations", views.DesiredConfigurationViewSet)
router.register("actual-configurations", views.ActualConfigurationViewSet)
# Stored readings and events of the meters in scope, paged by key (meters/api/readings.py).
router.register("readings", readings.ReadingViewSet, basename="reading")
router.register("events", readings.EventViewSet, basename="event")
urlpatterns = router.urls
# Registry files; before the router, whose meters/<pk>/ would take "import" and "export".
urlpatterns = [
    path("meters/import/", registry_io.RegistryImportView.as_view(), name="api-meter-import"),
    path("meters/export/", registry_io.RegistryExportView.as_view(), name="api-meter-export"),
    *urlpatterns,
]
# A meter's time series for its graph (meters/api/series.py).
from .series import MeterSeriesView  # noqa: E402

urlpatterns.insert(
    0, path("meters/<int:pk>/series/", MeterSeriesView.as_view(), name="api-meter-series")
)
# Alarms (meters/alarms/api.py): their own router, appended after the registry's.
from rest_framework.routers import SimpleRouter  # noqa: E402

from ..alarms import api as alarm_api  # noqa: E402

alarm_router = SimpleRouter()
alarm_router.register("alarms", alarm_api.AlarmViewSet, basename="alarm")
alarm_router.register("alarm-rules", alarm_api.AlarmRuleViewSet, basename="alarmrule")
alarm_router.register(
    "alarm-subscriptions", alarm_api.AlarmSubscriptionViewSet, basename="alarmsubscription"
)
alarm_router.register(
    "notification-deliveries",
    alarm_api.NotificationDeliveryViewSet,
    basename="notificationdelivery",
)
urlpatterns += alarm_router.urls
