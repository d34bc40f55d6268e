"""Real-time: the server processes (``realtime_servers``) and, on each session, who holds it and how it ended.

Zero downtime: a new table and nullable columns or a constant database default, so code
that predates them keeps inserting sessions. Indexes on ``websocket_sessions`` come
next, built concurrently (0004).
"""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("realtime", "0002_add_performance_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="RealtimeServer",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("server_id", models.CharField(max_length=64, unique=True)),
                ("hostname", models.CharField(max_length=255)),
                ("pid", models.PositiveIntegerField()),
                ("started_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("last_beat_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("stopped_at", models.DateTimeField(blank=True, null=True)),
                ("stop_reason", models.CharField(blank=True, default="", max_length=16)),
            ],
            options={
                "db_table": "realtime_servers",
                "indexes": [
                    models.Index(
                        condition=models.Q(("stopped_at__isnull", True)),
                        fields=["last_beat_at"],
                        name="rt_servers_live_beat_idx",
                    )
                ],
            },
        ),
        migrations.AddField(
            model_name="websocketsession",
            name="server_id",
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="websocketsession",
            name="disconnect_reason",
            field=models.CharField(
                blank=True,
                choices=[
                    ("client closed", "Client Closed"),
                    ("signed out", "Signed Out"),
                    ("token expired", "Token Expired"),
                    ("account disabled", "Disabled"),
                    ("silent", "Silent"),
                    ("message too large", "Too Large"),
                    ("server shutdown", "Shutdown"),
                    ("server lost", "Server Lost"),
                    ("stale", "Stale"),
                ],
                db_default="",
                default="",
                max_length=32,
            ),
        ),
        migrations.AddField(
            model_name="websocketsession",
            name="close_code",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
    ]
