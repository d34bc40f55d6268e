from django.urls import path

from projects import views

urlpatterns = [
    path("projects/", views.project_list_view, name="project-list"),
    path("projects/<int:project_id>/", views.project_detail_view, name="project-detail"),
    path("projects/<int:project_id>/files/<int:file_id>/", views.file_view, name="project-file"),
]
