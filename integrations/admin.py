"""GitHub sync records in the admin: browse and filter them; they are written only by the sync."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from integrations.models import GitHubSyncRecord


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
    list_filter = ("status",)
    date_hierarchy = "created_at"
    search_fields = ("repository_owner", "repository_name", "project__name")
    list_select_related = ("project", "requested_by")
    ordering = ("-created_at",)
    readonly_fields = tuple(field.name for field in GitHubSyncRecord._meta.fields)

    @admin.display(description="Repository", ordering="repository_owner")
    def repository(self, record: GitHubSyncRecord) -> str:
        return f"{record.repository_owner}/{record.repository_name}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: GitHubSyncRecord | None = None) -> bool:
        return False
