"""Projects and generated files as the legacy schema has them (see accounts 0001)."""

import django.db.models.deletion
import django.db.models.functions.datetime
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import core.db.fields


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0001_legacy_baseline"),
    ]

    operations = [
        migrations.CreateModel(
            name="Project",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=200)),
                ("description", models.TextField(blank=True, db_default="", default="")),
                (
                    "cloud_provider",
                    models.CharField(choices=[("azure", "Azure"), ("aws", "Aws"), ("gcp", "Gcp")], max_length=16),
                ),
                (
                    "iac_tool",
                    models.CharField(
                        choices=[("terraform", "Terraform"), ("bicep", "Bicep"), ("pulumi", "Pulumi")], max_length=16
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(
                        db_default=django.db.models.functions.datetime.Now(), default=django.utils.timezone.now
                    ),
                ),
                (
                    "updated_at",
                    models.DateTimeField(auto_now=True, db_default=django.db.models.functions.datetime.Now()),
                ),
                (
                    "owner",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.DB_CASCADE,
                        related_name="projects",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "projects",
                "constraints": [models.UniqueConstraint(fields=("owner", "name"), name="projects_owner_id_name_key")],
            },
        ),
        migrations.CreateModel(
            name="GeneratedFile",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("path", models.CharField(max_length=500)),
                ("content", models.TextField()),
                ("sha256", core.db.fields.FixedCharField(max_length=64)),
                (
                    "created_at",
                    models.DateTimeField(
                        db_default=django.db.models.functions.datetime.Now(), default=django.utils.timezone.now
                    ),
                ),
                (
                    "project",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.DB_CASCADE,
                        related_name="files",
                        to="projects.project",
                    ),
                ),
            ],
            options={
                "db_table": "generated_files",
                "constraints": [
                    models.UniqueConstraint(fields=("project", "path"), name="generated_files_project_id_path_key")
                ],
            },
        ),
    ]
