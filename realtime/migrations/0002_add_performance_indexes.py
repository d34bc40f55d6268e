"""Step 5 (realtime part): a user's live sessions; live sessions by heartbeat."""

from django.db import migrations, models

from core.db.operations import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("realtime", "0001_add_websocket_sessions"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="websocketsession",
            index=models.Index(
                condition=models.Q(("disconnected_at__isnull", True)), fields=["user"], name="ws_sessions_user_live_idx"
            ),
        ),
        AddIndexConcurrently(
            model_name="websocketsession",
            index=models.Index(
                condition=models.Q(("disconnected_at__isnull", True)),
                fields=["last_heartbeat_at"],
                name="ws_sessions_heartbeat_idx",
            ),
        ),
    ]
