"""What integrations adds to other apps' pages, through their signals."""

from __future__ import annotations

from django.db.models import OuterRef, Subquery
from django.urls import reverse

from integrations.models import GitHubRepositoryMapping, GitHubSyncRecord
from projects.models import Project


def attach_github(*, projects: list, **kwargs) -> None:
    """``project.github``: its mapping and last sync, for every project shown, in two queries."""
    if not projects:
        return
    ids = [p.pk for p in projects]
    mappings = {m.project_id: m for m in GitHubRepositoryMapping.objects.filter(project_id__in=ids)}
    newest = GitHubSyncRecord.objects.filter(project_id=OuterRef("pk")).order_by("-created_at", "-pk").values("pk")[:1]
    last_ids = Project.objects.filter(pk__in=ids).annotate(last=Subquery(newest)).values("last")
    last = {r.project_id: r for r in GitHubSyncRecord.objects.filter(pk__in=Subquery(last_ids))}
    for project in projects:
        mapping, record = mappings.get(project.pk), last.get(project.pk)
        project.github = {
            "url": reverse("project-github", args=[project.pk]),
            "repository": str(mapping) if mapping else "",
            "status": record.status if record else "",
            "status_label": record.get_status_display() if record else "",
        }
