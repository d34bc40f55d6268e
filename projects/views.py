"""The signed-in user's projects, their generated files, and one file's content."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from projects.models import GeneratedFile, Project
from projects.signals import projects_shown

PROJECTS_PER_PAGE = 25
FILES_PER_PAGE = 100


@login_required
def project_list_view(request: HttpRequest) -> HttpResponse:
    staff = request.user.is_staff
    projects = Project.objects.visible_to(request.user).with_file_count().newest_first()
    if staff:
        projects = projects.select_related("owner")
    page = Paginator(projects, PROJECTS_PER_PAGE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    projects_shown.send(sender=Project, projects=page.object_list)
    return render(
        request,
        "projects/project_list.html",
        {"page_obj": page, "show_owner": staff, "section": "projects"},
    )


@login_required
def project_detail_view(request: HttpRequest, project_id: int) -> HttpResponse:
    # Someone else's project is "not found", not "forbidden": its existence is not revealed.
    project = get_object_or_404(Project.objects.visible_to(request.user).select_related("owner"), pk=project_id)
    page = Paginator(project.files.listing(), FILES_PER_PAGE).get_page(request.GET.get("page"))
    projects_shown.send(sender=Project, projects=[project])
    return render(
        request,
        "projects/project_detail.html",
        {"project": project, "page_obj": page, "show_owner": request.user.is_staff, "section": "projects"},
    )


@login_required
def file_view(request: HttpRequest, project_id: int, file_id: int) -> HttpResponse:
    file = get_object_or_404(
        GeneratedFile.objects.visible_to(request.user).with_size().select_related("project"),
        pk=file_id,
        project_id=project_id,
    )
    return render(request, "projects/file_detail.html", {"file": file, "project": file.project, "section": "projects"})
