"""Step 5 (accounts part): indexes for Entra sign-in, migration review and activity.

Built concurrently on PostgreSQL; safe to re-run after an interruption.
"""

import django.db.models.functions.text
from django.db import migrations, models

from core.db.operations import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0004_add_user_preferences"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="user",
            index=models.Index(fields=["azure_tenant_id", "azure_entra_id"], name="users_entra_tenant_idx"),
        ),
        AddIndexConcurrently(
            model_name="user",
            index=models.Index(django.db.models.functions.text.Lower("email"), name="users_email_lower_idx"),
        ),
        AddIndexConcurrently(
            model_name="user",
            index=models.Index(
                condition=models.Q(("requires_entra_migration", True)), fields=["id"], name="users_pending_entra_idx"
            ),
        ),
        AddIndexConcurrently(
            model_name="user",
            index=models.Index(fields=["last_login"], name="users_last_login_idx"),
        ),
    ]
