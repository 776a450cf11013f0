"""REST API routes of the accounts app."""

from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("organisations", views.OrganisationViewSet)
router.register("users", views.UserViewSet)
router.register("activity", views.ActivityLogViewSet, basename="activitylog")
router.register("tokens", views.ApiTokenViewSet, basename="apitoken")
urlpatterns = router.urls
