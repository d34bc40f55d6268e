"""The platform's projects and the infrastructure code generated for them.

Both tables predate this project (``0001_legacy_baseline``); their foreign keys
cascade in the database, as the legacy schema declares.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

from core.db.fields import FixedCharField


class Project(models.Model):
    class CloudProvider(models.TextChoices):
        AZURE = "azure"
        AWS = "aws"
        GCP = "gcp"

    class IacTool(models.TextChoices):
        TERRAFORM = "terraform"
        BICEP = "bicep"
        PULUMI = "pulumi"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.DB_CASCADE, related_name="projects")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="", db_default="")
    cloud_provider = models.CharField(max_length=16, choices=CloudProvider)
    iac_tool = models.CharField(max_length=16, choices=IacTool)
    created_at = models.DateTimeField(default=timezone.now, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "projects"
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="projects_owner_id_name_key"),
        ]

    def __str__(self) -> str:
        return self.name


class GeneratedFile(models.Model):
    """One file of infrastructure code generated for a project."""

    # The unique (project, path) constraint serves lookups by project.
    project = models.ForeignKey(Project, on_delete=models.DB_CASCADE, related_name="files", db_index=False)
    path = models.CharField(max_length=500)
    content = models.TextField()
    sha256 = FixedCharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now, db_default=Now())

    class Meta:
        db_table = "generated_files"
        constraints = [
            models.UniqueConstraint(fields=["project", "path"], name="generated_files_project_id_path_key"),
        ]

    def __str__(self) -> str:
        return self.path
