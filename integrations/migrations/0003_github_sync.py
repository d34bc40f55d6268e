"""Step 3, continued: what a GitHub sync needs (mapping, write budget, heartbeat, error detail, SHAs).

New tables, and new columns that are nullable or have a constant default: catalog-only
changes on PostgreSQL, safe while the application writes.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0002_add_performance_indexes"),
        ("projects", "0001_legacy_baseline"),
    ]

    operations = [
        migrations.CreateModel(
            name="GitHubRepositoryMapping",
            fields=[
                (
                    "project",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.DB_CASCADE,
                        primary_key=True,
                        related_name="github_mapping",
                        serialize=False,
                        to="projects.project",
                    ),
                ),
                ("repository_owner", models.CharField(max_length=100)),
                ("repository_name", models.CharField(max_length=100)),
                ("branch", models.CharField(db_default="main", default="main", max_length=255)),
                ("path", models.CharField(blank=True, db_default="", default="", max_length=500)),
                (
                    "updated_at",
                    models.DateTimeField(auto_now=True, db_default=django.db.models.functions.datetime.Now()),
                ),
            ],
            options={
                "db_table": "github_repository_mappings",
            },
        ),
        migrations.CreateModel(
            name="GitHubWrite",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("at", models.DateTimeField(db_index=True)),
            ],
            options={
                "db_table": "github_writes",
            },
        ),
        migrations.AddField(
            model_name="githubsyncrecord",
            name="base_sha",
            field=models.CharField(blank=True, db_default="", default="", max_length=40),
        ),
        migrations.AddField(
            model_name="githubsyncrecord",
            name="heartbeat_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="githubsyncrecord",
            name="last_error_class",
            field=models.CharField(blank=True, db_default="", default="", max_length=100),
        ),
        migrations.AddField(
            model_name="githubsyncrecord",
            name="last_error_request_id",
            field=models.CharField(blank=True, db_default="", default="", max_length=100),
        ),
        migrations.AddField(
            model_name="githubsyncrecord",
            name="last_error_status",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="githubsyncrecord",
            name="rate_limit_remaining",
            field=models.IntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="githubsyncrecord",
            name="rate_limit_reset_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="githubsyncrecord",
            name="tree_sha",
            field=models.CharField(blank=True, db_default="", default="", max_length=40),
        ),
        migrations.AlterField(
            model_name="githubsyncrecord",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending"),
                    ("running", "Running"),
                    ("succeeded", "Succeeded"),
                    ("failed", "Failed"),
                    ("retrying", "Retrying"),
                    ("unchanged", "Unchanged"),
                ],
                db_default="pending",
                default="pending",
                max_length=16,
            ),
        ),
    ]
