"""GitHub pages: connecting an account, a project's mapping and syncs. Thin views over the services."""

from __future__ import annotations

from functools import wraps

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from integrations.github import connect, services
from integrations.github.sync import BadPath
from integrations.models import GitHubRepositoryMapping, GitHubSyncRecord
from projects.models import Project


def _error(request: HttpRequest, message: str, *, status: int) -> HttpResponse:
    return render(request, "integrations/github_error.html", {"message": message, "section": "account"}, status=status)


def github_required(view):
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not settings.GITHUB_ENABLED:
            return _error(request, "The GitHub integration is off on this server (GITHUB_APP_ID).", status=503)
        return view(request, *args, **kwargs)

    return wrapper


@login_required
@github_required
@require_GET
def connect_view(request: HttpRequest) -> HttpResponse:
    redirect_uri = request.build_absolute_uri(reverse("github-callback"))
    return redirect(connect.start(session=request.session, redirect_uri=redirect_uri))


@login_required
@github_required
@require_GET
def callback_view(request: HttpRequest) -> HttpResponse:
    try:
        login = connect.complete(session=request.session, user=request.user, params=request.GET.dict())
    except connect.ConnectError as exc:
        return _error(request, exc.message, status=400)
    messages.success(request, f"Your GitHub account {login} is connected.")
    return redirect("account")


@login_required
@require_POST
def disconnect_view(request: HttpRequest) -> HttpResponse:
    connect.disconnect(user=request.user)
    messages.success(request, "Your GitHub account is disconnected.")
    return redirect("account")


class MappingForm(forms.Form):
    repository = forms.RegexField(
        regex=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$",
        label="Repository (owner/name)",
        error_messages={"invalid": "Write the repository as owner/name."},
    )
    branch = forms.CharField(max_length=255, initial="main")
    path = forms.CharField(max_length=500, required=False, label="Folder (empty: the whole repository)")

    def clean_path(self) -> str:
        try:
            return services.normalize_folder(self.cleaned_data["path"])
        except BadPath as exc:
            raise forms.ValidationError(str(exc)) from None


def _project_for(request: HttpRequest, project_id: int) -> Project:
    """The project, if it is the user's own (staff see all); otherwise a 404 that confirms nothing."""
    projects = Project.objects.all() if request.user.is_staff else Project.objects.filter(owner=request.user)
    project = projects.select_related("owner").filter(pk=project_id).first()
    if project is None:
        raise Http404
    return project


@login_required
def project_github_view(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _project_for(request, project_id)
    mapping = GitHubRepositoryMapping.objects.filter(project=project).first()
    initial = (
        {
            "repository": f"{mapping.repository_owner}/{mapping.repository_name}",
            "branch": mapping.branch,
            "path": mapping.path,
        }
        if mapping
        else {}
    )
    form = MappingForm(initial=initial)
    if request.method == "POST":
        if not settings.GITHUB_ENABLED:
            return _error(request, "The GitHub integration is off on this server (GITHUB_APP_ID).", status=503)
        if request.POST.get("action") == "sync":
            if mapping is None:
                messages.error(request, "Map the project to a repository first.")
            else:
                record = services.request_sync(project=project, requested_by=request.user)
                messages.success(request, f"Sync #{record.pk} is queued.")
            return redirect("project-github", project_id=project.pk)
        form = MappingForm(request.POST)
        if form.is_valid():
            owner, name = form.cleaned_data["repository"].split("/")
            services.set_mapping(
                project=project,
                owner=owner,
                name=name,
                branch=form.cleaned_data["branch"],
                path=form.cleaned_data["path"],
            )
            messages.success(request, "The repository mapping is saved.")
            return redirect("project-github", project_id=project.pk)
    syncs = GitHubSyncRecord.objects.filter(project=project).order_by("-created_at")[:20]
    return render(
        request,
        "integrations/project_github.html",
        {
            "project": project,
            "mapping": mapping,
            "form": form,
            "syncs": syncs,
            "enabled": settings.GITHUB_ENABLED,
            "web_url": settings.GITHUB_WEB_URL,
            "section": "projects",
        },
        status=400 if form.errors else 200,
    )
