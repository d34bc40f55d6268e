"""The platform's projects and the infrastructure code generated for them.

Both tables predate this project (``0001_legacy_baseline``); their foreign keys
cascade in the database, as the legacy schema declares.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

from core.db.fields import FixedCharField

if TYPE_CHECKING:
    from accounts.models import User


class OctetLength(models.Func):
    """The size in bytes (UTF-8) of a text column, not its length in characters."""

    function = "OCTET_LENGTH"
    output_field = models.IntegerField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="LENGTH(CAST(%(expressions)s AS BLOB))", **extra_context)


class ProjectQuerySet(models.QuerySet):
    def visible_to(self, user: User) -> ProjectQuerySet:
        """Staff see every project; anyone else only their own."""
        return self.all() if user.is_staff else self.filter(owner=user)

    def with_file_count(self) -> ProjectQuerySet:
        return self.annotate(file_count=models.Count("files"))

    def newest_first(self) -> ProjectQuerySet:
        return self.order_by("-created_at", "-pk")


class GeneratedFileQuerySet(models.QuerySet):
    def visible_to(self, user: User) -> GeneratedFileQuerySet:
        return self.all() if user.is_staff else self.filter(project__owner=user)

    def with_size(self) -> GeneratedFileQuerySet:
        return self.annotate(size=OctetLength("content"))

    def listing(self) -> GeneratedFileQuerySet:
        """Path and size for a list of files, without reading their content."""
        return self.with_size().defer("content").order_by("path")


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

    objects = ProjectQuerySet.as_manager()

    class Meta:
        db_table = "projects"
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="projects_owner_id_name_key"),
        ]

    def __str__(self) -> str:
        return self.name

    # The choices have no labels of their own (adding them would be a migration): "AWS", not "Aws".
    @property
    def cloud_provider_label(self) -> str:
        return {"azure": "Azure", "aws": "AWS", "gcp": "Google Cloud"}.get(self.cloud_provider, self.cloud_provider)

    @property
    def iac_tool_label(self) -> str:
        return {"terraform": "Terraform", "bicep": "Bicep", "pulumi": "Pulumi"}.get(self.iac_tool, self.iac_tool)


class GeneratedFile(models.Model):
    """One file of infrastructure code generated for a project."""

    # The unique (project, path) constraint serves lookups by project.
    project = models.ForeignKey(Project, on_delete=models.DB_CASCADE, related_name="files", db_index=False)
    path = models.CharField(max_length=500)
    content = models.TextField()
    sha256 = FixedCharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now, db_default=Now())

    objects = GeneratedFileQuerySet.as_manager()

    class Meta:
        db_table = "generated_files"
        constraints = [
            models.UniqueConstraint(fields=["project", "path"], name="generated_files_project_id_path_key"),
        ]

    def __str__(self) -> str:
        return self.path

    @property
    def name(self) -> str:
        """The file's own name: the last part of its path."""
        return self.path.rstrip("/").rsplit("/", 1)[-1]
