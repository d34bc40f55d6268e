"""WebSocket routes: ``/ws/notifications/``; any other path is refused at the handshake (403)."""

from __future__ import annotations

from channels.security.websocket import WebsocketDenier
from django.urls import path, re_path

from realtime.consumers import NotificationConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi()),
    re_path(r"", WebsocketDenier.as_asgi()),
]
