"""WebSocket sessions: one row per connection, kept after it closes."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class WebSocketSession(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.DB_CASCADE, related_name="websocket_sessions")
    connection_id = models.UUIDField(default=uuid.uuid4, unique=True)
    channel_name = models.CharField(max_length=255)
    connected_at = models.DateTimeField(default=timezone.now)
    last_heartbeat_at = models.DateTimeField(default=timezone.now)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(blank=True, default="")
    client_metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "websocket_sessions"
        indexes = [
            models.Index(
                fields=["user"], condition=models.Q(disconnected_at__isnull=True), name="ws_sessions_user_live_idx"
            ),
            models.Index(
                fields=["last_heartbeat_at"],
                condition=models.Q(disconnected_at__isnull=True),
                name="ws_sessions_heartbeat_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.connection_id} ({self.user_id})"
