"""Pages of the collection app."""

from django.urls import path

from . import views

app_name = "collection"
urlpatterns = [
    path("runs/", views.RunListView.as_view(), name="run-list"),
    path("runs/<int:pk>/", views.RunDetailView.as_view(), name="run-detail"),
    path("meters/<str:serial>/read/", views.read_meter_now, name="read-meter"),
    path("status/", views.SystemStatusView.as_view(), name="status"),
    path("jobs/", views.ReadJobListView.as_view(), name="job-list"),
    path("jobs/new/", views.ReadJobEditView.as_view(), name="job-new"),
    path("jobs/<int:pk>/edit/", views.ReadJobEditView.as_view(), name="job-edit"),
    path("jobs/<int:pk>/delete/", views.ReadJobDeleteView.as_view(), name="job-delete"),
    path("jobs/<int:pk>/run/", views.run_job_now, name="job-run"),
    path("jobs/<int:pk>/reread/", views.reread_job_period, name="job-reread"),
]
