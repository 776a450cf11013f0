"""REST API routes of the meters app."""

from rest_framework.routers import DefaultRouter

router = DefaultRouter()
urlpatterns = router.urls
