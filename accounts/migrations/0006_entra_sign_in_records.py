"""After step 5: what Entra sign-in keeps (refused links, the link audit, the encrypted token cache, photos).

New tables only, so nothing existing is locked for longer than a catalog change.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_add_performance_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="RefusedEntraLink",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "reason",
                    models.CharField(
                        choices=[
                            ("ambiguous_email", "several users have this email"),
                            ("linked_elsewhere", "the user is linked to another Entra account"),
                            ("inactive", "the user is inactive"),
                            ("unverified_email", "the tenant does not own this email"),
                            ("no_account", "no user to link and just-in-time creation is off"),
                            ("not_flagged", "the user with this email is not awaiting Entra migration"),
                        ],
                        max_length=32,
                    ),
                ),
                ("tenant_id", models.CharField(max_length=64)),
                ("object_id", models.CharField(max_length=64)),
                ("email", models.CharField(blank=True, default="", max_length=254)),
                ("candidate_ids", models.JSONField(blank=True, default=list)),
                ("resolved", models.BooleanField(default=False)),
                (
                    "created_at",
                    models.DateTimeField(
                        db_default=django.db.models.functions.datetime.Now(), default=django.utils.timezone.now
                    ),
                ),
            ],
            options={
                "db_table": "entra_refused_links",
            },
        ),
        migrations.CreateModel(
            name="EntraLinkAudit",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("event", models.CharField(choices=[("linked", "Linked"), ("created", "Created")], max_length=16)),
                ("tenant_id", models.CharField(max_length=64)),
                ("object_id", models.CharField(max_length=64)),
                ("matched_email", models.CharField(blank=True, default="", max_length=254)),
                (
                    "created_at",
                    models.DateTimeField(
                        db_default=django.db.models.functions.datetime.Now(), default=django.utils.timezone.now
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.DB_CASCADE,
                        related_name="entra_link_audits",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "entra_link_audits",
            },
        ),
        migrations.CreateModel(
            name="EntraTokenCache",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("ciphertext", models.BinaryField()),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.DB_CASCADE,
                        related_name="entra_token_cache",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "entra_token_caches",
            },
        ),
        migrations.CreateModel(
            name="ProfilePhoto",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("content", models.BinaryField()),
                ("content_type", models.CharField(max_length=100)),
                ("etag", models.CharField(blank=True, default="", max_length=200)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.DB_CASCADE,
                        related_name="profile_photo",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "profile_photos",
            },
        ),
    ]
