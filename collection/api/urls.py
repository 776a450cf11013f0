"""REST API routes of the collection app."""

from django.urls import path

from amisite.routers import ApiRouter

from . import views

router = ApiRouter()
router.register("read-jobs", views.ReadJobViewSet)
router.register("runs", views.JobRunViewSet)
urlpatterns = [
    path("meters/<int:pk>/read/", views.MeterReadView.as_view(), name="api-meter-read"),
    path("rereads/", views.MeterRereadView.as_view(), name="api-reread"),
    *router.urls,
]
