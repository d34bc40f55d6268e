"""Step 2, continued: ``azure_entra_id`` unique, without blocking writers.

Also builds, on an adopted legacy database, the index Django keeps for
prefix searches on ``users.email``.

A unique index built concurrently, then attached as the constraint. Not atomic:
``CREATE INDEX CONCURRENTLY`` cannot run in a transaction. Safe to re-run.
"""

from django.db import migrations

from core.db.operations import AddUniqueConstraintConcurrently, EnsureLikeIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("accounts", "0002_add_azure_entra_fields_to_users"),
    ]

    operations = [
        AddUniqueConstraintConcurrently(model_name="user", field_name="azure_entra_id"),
        EnsureLikeIndexConcurrently(model_name="user", field_name="azure_entra_id"),
        # An adopted legacy database lacks the LIKE index Django gives users.email.
        EnsureLikeIndexConcurrently(model_name="user", field_name="email"),
    ]
