"""Step 4 (accounts part): one preferences row per user, with defaults.

Rows for existing users are created by ``migrate_users_to_entra``, in batches.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_enforce_unique_azure_entra_id"),
    ]

    operations = [
        migrations.CreateModel(
            name="UserPreferences",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "theme",
                    models.CharField(
                        choices=[("system", "System"), ("light", "Light"), ("dark", "Dark")],
                        db_default="system",
                        default="system",
                        max_length=16,
                    ),
                ),
                ("language", models.CharField(db_default="en", default="en", max_length=16)),
                ("email_notifications", models.BooleanField(db_default=True, default=True)),
                ("in_app_notifications", models.BooleanField(db_default=True, default=True)),
                ("notify_on_sync_failure", models.BooleanField(db_default=True, default=True)),
                ("github_auto_sync", models.BooleanField(db_default=False, default=False)),
                ("github_default_branch", models.CharField(db_default="main", default="main", max_length=255)),
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
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.DB_CASCADE,
                        related_name="preferences",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"verbose_name_plural": "user preferences", "db_table": "user_preferences"},
        ),
    ]
