"""WebSocket sessions, one row per connection kept after it closes, and the server processes holding them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class RealtimeServer(models.Model):
    """A server process that holds WebSocket connections; it beats while it lives."""

    server_id = models.CharField(max_length=64, unique=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    last_beat_at = models.DateTimeField(default=timezone.now)
    stopped_at = models.DateTimeField(null=True, blank=True)
    # "shutdown" (it settled its own sessions) or "lost" (a sweep found it silent).
    stop_reason = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        db_table = "realtime_servers"
        indexes = [
            models.Index(
                fields=["last_beat_at"], condition=models.Q(stopped_at__isnull=True), name="rt_servers_live_beat_idx"
            )
        ]

    def __str__(self) -> str:
        return self.server_id


class WebSocketSession(models.Model):
    class Reason(models.TextChoices):
        CLIENT_CLOSED = "client closed"
        SIGNED_OUT = "signed out"
        TOKEN_EXPIRED = "token expired"  # noqa: S105 - a reason, not a secret
        DISABLED = "account disabled"
        SILENT = "silent"
        TOO_LARGE = "message too large"
        SHUTDOWN = "server shutdown"
        SERVER_LOST = "server lost"
        STALE = "stale"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.DB_CASCADE, related_name="websocket_sessions")
    connection_id = models.UUIDField(default=uuid.uuid4, unique=True)
    channel_name = models.CharField(max_length=255)
    connected_at = models.DateTimeField(default=timezone.now)
    last_heartbeat_at = models.DateTimeField(default=timezone.now)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(blank=True, default="")
    client_metadata = models.JSONField(default=dict, blank=True)
    # The server process holding the connection (realtime_servers.server_id); NULL on rows from before it was kept.
    server_id = models.CharField(max_length=64, null=True, blank=True)
    disconnect_reason = models.CharField(max_length=32, choices=Reason, blank=True, default="", db_default="")
    close_code = models.PositiveIntegerField(null=True, blank=True)

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
            models.Index(
                fields=["server_id"],
                condition=models.Q(disconnected_at__isnull=True),
                name="ws_sessions_server_live_idx",
            ),
            models.Index(
                fields=["disconnected_at"],
                condition=models.Q(disconnected_at__isnull=False),
                name="ws_sessions_closed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.connection_id} ({self.user_id})"
