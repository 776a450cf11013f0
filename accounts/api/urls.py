"""REST API routes of the accounts app."""

from amisite.routers import ApiRouter

from . import views

router = ApiRouter()
router.register("organisations", views.OrganisationViewSet)
router.register("users", views.UserViewSet)
router.register("activity", views.ActivityLogViewSet, basename="activitylog")
router.register("tokens", views.ApiTokenViewSet, basename="apitoken")
urlpatterns = router.urls
