"""Step 2: the Entra ID and GitHub fields on users; the password column goes.

Every new column is nullable or has a constant default, so on PostgreSQL each
ALTER is a catalog change that holds its lock for milliseconds. The unique
index on ``azure_entra_id`` is built concurrently by the next migration.

Going back drops the Entra data (as the original plan warns) and brings back
a ``hashed_password`` column holding "!" (unusable) for everyone: password
hashes are not restored.
"""

from django.db import migrations, models

from core.db.operations import AddFieldDeferringUnique


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_legacy_baseline"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        AddFieldDeferringUnique(
            "user", "azure_entra_id", models.CharField(blank=True, max_length=64, null=True, unique=True)
        ),
        migrations.AddField("user", "azure_tenant_id", models.CharField(blank=True, max_length=64, null=True)),
        migrations.AddField("user", "azure_access_token_hash", models.CharField(blank=True, max_length=64, null=True)),
        migrations.AddField("user", "azure_refresh_token_hash", models.CharField(blank=True, max_length=64, null=True)),
        migrations.AddField("user", "azure_token_expires_at", models.DateTimeField(blank=True, null=True)),
        migrations.AddField("user", "profile_picture_url", models.URLField(blank=True, max_length=500, null=True)),
        migrations.AddField("user", "organization", models.CharField(blank=True, max_length=200, null=True)),
        migrations.AddField("user", "department", models.CharField(blank=True, max_length=200, null=True)),
        migrations.AddField("user", "github_username", models.CharField(blank=True, max_length=100, null=True)),
        migrations.AddField("user", "github_access_token_hash", models.CharField(blank=True, max_length=64, null=True)),
        migrations.AddField("user", "github_connected_at", models.DateTimeField(blank=True, null=True)),
        migrations.AddField("user", "requires_entra_migration", models.BooleanField(db_default=False, default=False)),
        migrations.AddField("user", "entra_linked_at", models.DateTimeField(blank=True, null=True)),
        migrations.AddField("user", "is_staff", models.BooleanField(db_default=False, default=False)),
        migrations.AddField(
            "user",
            "groups",
            models.ManyToManyField(
                blank=True,
                help_text="The groups this user belongs to. A user will get all permissions granted to each of their groups.",
                related_name="user_set",
                related_query_name="user",
                to="auth.group",
                verbose_name="groups",
            ),
        ),
        migrations.AddField(
            "user",
            "user_permissions",
            models.ManyToManyField(
                blank=True,
                help_text="Specific permissions for this user.",
                related_name="user_set",
                related_query_name="user",
                to="auth.permission",
                verbose_name="user permissions",
            ),
        ),
        # No SQL forwards (a Python-side default). Backwards, it is the value the
        # re-added column gets: "!", the conventional unusable password hash.
        migrations.AlterField("user", "hashed_password", models.CharField(default="!", max_length=128)),
        migrations.RemoveField("user", "hashed_password"),
    ]
