"""REST API routes of the meters app."""

from django.urls import path
from rest_framework.routers import DefaultRouter

from . import registry_io, views

router = DefaultRouter()
router.register("grid-nodes", views.GridNodeViewSet)
router.register("meter-models", views.MeterModelViewSet)
router.register("channels", views.ChannelViewSet)
router.register("concentrators", views.DataConcentratorViewSet)
router.register("meters", views.MeterViewSet)
router.register("customers", views.CustomerViewSet)
urlpatterns = router.urls
# Registry files; before the router, whose meters/<pk>/ would take "import" and "export".
urlpatterns = [
    path("meters/import/", registry_io.RegistryImportView.as_view(), name="api-meter-import"),
    path("meters/export/", registry_io.RegistryExportView.as_view(), name="api-meter-export"),
    *urlpatterns,
]
