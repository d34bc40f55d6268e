"""GitHub: a project's repository mapping, the sync records, and the shared write budget."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone


class GitHubSyncRecord(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        RETRYING = "retrying"
        UNCHANGED = "unchanged"

    FINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.UNCHANGED})

    project = models.ForeignKey("projects.Project", on_delete=models.DB_CASCADE, related_name="github_syncs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DB_SET_NULL, null=True, blank=True, related_name="+"
    )
    repository_owner = models.CharField(max_length=100)
    repository_name = models.CharField(max_length=100)
    branch = models.CharField(max_length=255, default="main", db_default="main")
    path = models.CharField(max_length=500, blank=True, default="", db_default="")

    status = models.CharField(max_length=16, choices=Status, default=Status.PENDING, db_default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0, db_default=0)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="", db_default="")
    error_history = models.JSONField(default=list, blank=True)

    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    files_count = models.PositiveIntegerField(null=True, blank=True)
    bytes_count = models.BigIntegerField(null=True, blank=True)
    api_calls = models.PositiveIntegerField(null=True, blank=True)
    commit_sha = models.CharField(max_length=40, blank=True, default="", db_default="")
    # What the sync built on and built: the branch head it started from, the folder's tree.
    base_sha = models.CharField(max_length=40, blank=True, default="", db_default="")
    tree_sha = models.CharField(max_length=40, blank=True, default="", db_default="")
    # A running sync refreshes this; a running record whose heartbeat is stale belongs to a dead worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_error_class = models.CharField(max_length=100, blank=True, default="", db_default="")
    last_error_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error_request_id = models.CharField(max_length=100, blank=True, default="", db_default="")
    rate_limit_remaining = models.IntegerField(null=True, blank=True)
    rate_limit_reset_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "github_sync_records"
        indexes = [
            models.Index(fields=["status", "next_retry_at"], name="github_sync_status_retry_idx"),
            models.Index(fields=["project", "-created_at"], name="github_sync_project_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.repository_owner}/{self.repository_name}@{self.branch} ({self.status})"

    @property
    def repository(self) -> str:
        return f"{self.repository_owner}/{self.repository_name}"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL


class GitHubRepositoryMapping(models.Model):
    """Where a project's generated files go: one repository, branch and folder per project."""

    project = models.OneToOneField(
        "projects.Project", on_delete=models.DB_CASCADE, related_name="github_mapping", primary_key=True
    )
    repository_owner = models.CharField(max_length=100)
    repository_name = models.CharField(max_length=100)
    branch = models.CharField(max_length=255, default="main", db_default="main")
    path = models.CharField(max_length=500, blank=True, default="", db_default="")
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "github_repository_mappings"

    def __str__(self) -> str:
        folder = f":{self.path}" if self.path else ""
        return f"{self.repository_owner}/{self.repository_name}@{self.branch}{folder}"


class GitHubWrite(models.Model):
    """One content-creating request sent to GitHub, kept an hour: the write budget every worker shares."""

    at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "github_writes"

    def __str__(self) -> str:
        return f"write at {self.at:%H:%M:%S}"
