"""GitHub sync records in the admin: browse and filter them; they are written only by the sync."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from integrations.github import services
from integrations.models import GitHubRepositoryMapping, GitHubSyncRecord


@admin.register(GitHubSyncRecord)
class GitHubSyncRecordAdmin(admin.ModelAdmin):
    """Read-mostly: every field is read-only and records cannot be added; they can be deleted."""

    list_display = (
        "id",
        "repository",
        "branch",
        "project",
        "status",
        "attempts",
        "requested_by",
        "created_at",
        "finished_at",
        "duration_ms",
    )
    list_filter = ("status", "repository_owner", "repository_name")
    date_hierarchy = "created_at"
    search_fields = ("repository_owner", "repository_name", "project__name")
    list_select_related = ("project", "requested_by")
    ordering = ("-created_at",)
    readonly_fields = tuple(field.name for field in GitHubSyncRecord._meta.fields)
    actions = ("retry_syncs",)

    @admin.action(description="Retry the selected failed or stale syncs", permissions=["change"])
    def retry_syncs(self, request: HttpRequest, queryset: QuerySet[GitHubSyncRecord]) -> None:
        candidates = services.retry_candidates().filter(pk__in=queryset.values("pk"))
        count = services.retry(list(candidates))
        self.message_user(request, f"{count} sync(s) re-enqueued; {queryset.count() - count} were not failed or stale.")

    @admin.display(description="Repository", ordering="repository_owner")
    def repository(self, record: GitHubSyncRecord) -> str:
        return f"{record.repository_owner}/{record.repository_name}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: GitHubSyncRecord | None = None) -> bool:
        # The change permission gates the retry action; no field is editable (all read-only).
        return obj is None and super().has_change_permission(request, obj)


@admin.register(GitHubRepositoryMapping)
class GitHubRepositoryMappingAdmin(admin.ModelAdmin):
    list_display = ("project", "repository_owner", "repository_name", "branch", "path", "updated_at")
    list_filter = ("repository_owner",)
    search_fields = ("project__name", "repository_owner", "repository_name")
    list_select_related = ("project",)
    readonly_fields = ("updated_at",)
