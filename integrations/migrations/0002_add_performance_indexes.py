"""Step 5 (integrations part): sync status with next retry; a project's syncs by time."""

from django.db import migrations, models

from core.db.operations import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("integrations", "0001_add_github_sync_records_table"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="githubsyncrecord",
            index=models.Index(fields=["status", "next_retry_at"], name="github_sync_status_retry_idx"),
        ),
        AddIndexConcurrently(
            model_name="githubsyncrecord",
            index=models.Index(fields=["project", "-created_at"], name="github_sync_project_time_idx"),
        ),
    ]
