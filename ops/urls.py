from django.urls import path

from ops import views

urlpatterns = [
    path("metrics", views.metrics_view, name="metrics"),
    path("health/live", views.live_view, name="health-live"),
    path("health/ready", views.ready_view, name="health-ready"),
]
