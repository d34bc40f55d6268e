"""Step 4 (realtime part): ``websocket_sessions``, one row per connection."""

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0002_add_azure_entra_fields_to_users"),
    ]

    operations = [
        migrations.CreateModel(
            name="WebSocketSession",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("connection_id", models.UUIDField(default=uuid.uuid4, unique=True)),
                ("channel_name", models.CharField(max_length=255)),
                ("connected_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("last_heartbeat_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("disconnected_at", models.DateTimeField(blank=True, null=True)),
                ("client_address", models.GenericIPAddressField(blank=True, null=True)),
                ("user_agent", models.TextField(blank=True, default="")),
                ("client_metadata", models.JSONField(blank=True, default=dict)),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.DB_CASCADE,
                        related_name="websocket_sessions",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"db_table": "websocket_sessions"},
        ),
    ]
