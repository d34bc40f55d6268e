"""The platform's database before the Entra migration (users, refresh tokens).

It matches ../shared/legacy/legacy_schema_postgres.sql. A database already in
that state is adopted with ``migrate --fake-initial`` and then checked with
``validate_entra_schema``. ``migrate accounts 0001_legacy_baseline`` takes the
whole schema back here.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import accounts.models
import core.db.fields


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="User",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("email", models.EmailField(max_length=254, unique=True)),
                ("full_name", models.CharField(blank=True, db_default="", default="", max_length=200)),
                ("hashed_password", models.CharField(max_length=128)),
                ("is_active", models.BooleanField(db_default=True, default=True)),
                ("is_superuser", models.BooleanField(db_default=False, default=False)),
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
                ("last_login", models.DateTimeField(blank=True, db_column="last_login_at", null=True)),
            ],
            options={"db_table": "users"},
            managers=[("objects", accounts.models.UserManager())],
        ),
        migrations.CreateModel(
            name="LegacyRefreshToken",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("token_hash", core.db.fields.FixedCharField(max_length=64, unique=True)),
                ("expires_at", models.DateTimeField()),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                (
                    "created_at",
                    models.DateTimeField(
                        db_default=django.db.models.functions.datetime.Now(), default=django.utils.timezone.now
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.DB_CASCADE, related_name="+", to=settings.AUTH_USER_MODEL
                    ),
                ),
            ],
            options={"db_table": "refresh_tokens"},
        ),
    ]
