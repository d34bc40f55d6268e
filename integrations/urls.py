from django.urls import path

from integrations.github import views

urlpatterns = [
    path("account/github/connect/", views.connect_view, name="github-connect"),
    path("account/github/callback/", views.callback_view, name="github-callback"),
    path("account/github/disconnect/", views.disconnect_view, name="github-disconnect"),
    path("projects/<int:project_id>/github/", views.project_github_view, name="project-github"),
]
