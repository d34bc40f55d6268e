"""Real-time: live sessions by server process (the sweep of dead servers), closed sessions by age (retention)."""

from django.db import migrations, models

from core.db.operations import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("realtime", "0003_realtime_servers_and_session_close"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="websocketsession",
            index=models.Index(
                condition=models.Q(("disconnected_at__isnull", True)),
                fields=["server_id"],
                name="ws_sessions_server_live_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="websocketsession",
            index=models.Index(
                condition=models.Q(("disconnected_at__isnull", False)),
                fields=["disconnected_at"],
                name="ws_sessions_closed_idx",
            ),
        ),
    ]
