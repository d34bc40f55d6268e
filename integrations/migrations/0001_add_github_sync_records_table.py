"""Step 3: ``github_sync_records``, one row per sync of a project to a repository."""

import django.db.models.deletion
import django.db.models.functions.datetime
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

NOW = django.db.models.functions.datetime.Now


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0002_add_azure_entra_fields_to_users"),
        ("projects", "0001_legacy_baseline"),
    ]

    operations = [
        migrations.CreateModel(
            name="GitHubSyncRecord",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("repository_owner", models.CharField(max_length=100)),
                ("repository_name", models.CharField(max_length=100)),
                ("branch", models.CharField(db_default="main", default="main", max_length=255)),
                ("path", models.CharField(blank=True, db_default="", default="", max_length=500)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("running", "Running"),
                            ("succeeded", "Succeeded"),
                            ("failed", "Failed"),
                            ("retrying", "Retrying"),
                        ],
                        db_default="pending",
                        default="pending",
                        max_length=16,
                    ),
                ),
                ("attempts", models.PositiveIntegerField(db_default=0, default=0)),
                ("next_retry_at", models.DateTimeField(blank=True, null=True)),
                ("last_error", models.TextField(blank=True, db_default="", default="")),
                ("error_history", models.JSONField(blank=True, default=list)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("duration_ms", models.PositiveIntegerField(blank=True, null=True)),
                ("files_count", models.PositiveIntegerField(blank=True, null=True)),
                ("bytes_count", models.BigIntegerField(blank=True, null=True)),
                ("api_calls", models.PositiveIntegerField(blank=True, null=True)),
                ("commit_sha", models.CharField(blank=True, db_default="", default="", max_length=40)),
                ("created_at", models.DateTimeField(db_default=NOW(), default=django.utils.timezone.now)),
                ("updated_at", models.DateTimeField(auto_now=True, db_default=NOW())),
                (
                    "project",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.DB_CASCADE,
                        related_name="github_syncs",
                        to="projects.project",
                    ),
                ),
                (
                    "requested_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.DB_SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"db_table": "github_sync_records"},
        ),
    ]
