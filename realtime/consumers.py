"""``/ws/notifications/``: an authenticated socket that receives the user's events.

Thin: ``realtime.auth`` decides who may connect, ``realtime.runtime`` writes the rows
and runs the timers. Per message there is JSON, a set insertion and a send: no ORM.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from channels.generic.websocket import AsyncWebsocketConsumer

from realtime.auth import Identity, Refused, authenticate_handshake, header
from realtime.groups import EVERYONE, user_group
from realtime.models import WebSocketSession
from realtime.runtime import Runtime

logger = logging.getLogger("realtime")
Reason = WebSocketSession.Reason
TOO_LARGE, UNSUPPORTED, BAD_PAYLOAD = 1009, 1003, 1007


class NotificationConsumer(AsyncWebsocketConsumer):
    identity: Identity
    connection_id: str = ""
    runtime: Runtime | None = None
    closing = False
    last_seen = 0.0

    async def connect(self) -> None:
        try:
            self.runtime = runtime = await Runtime.ensure()
            if runtime.stopping:
                raise Refused("the server is shutting down")
            self.identity = await runtime.db(authenticate_handshake, self.scope)
        except Refused as exc:
            logger.info("WebSocket refused: %s", exc.reason)
            await self.close()  # before accept: HTTP 403, and no row
            return
        self.connection_id = str(uuid.uuid4())
        self.groups = [user_group(self.identity.user_id), EVERYONE]
        for group in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        client = self.scope.get("client") or (None, None)
        await runtime.open_session(
            {
                "user_id": self.identity.user_id,
                "connection_id": self.connection_id,
                "channel_name": self.channel_name,
                "server_id": runtime.server_id,
                "client_address": client[0],
                "user_agent": header(self.scope, b"user-agent")[:512],
                "client_metadata": {"auth": self.identity.method, "subprotocol": self.identity.subprotocol or ""},
            }
        )
        self.last_seen = time.monotonic()
        runtime.add(self)
        await self.accept(self.identity.subprotocol)
        await self.send_json(
            {"type": "welcome", "connection_id": self.connection_id, "heartbeat_interval_s": runtime.config.heartbeat_s}
        )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing or self.runtime is None:
            return
        if bytes_data is not None:
            size = len(bytes_data)
        else:
            size = len(text_data or "")
            if size > self.runtime.config.max_message_bytes // 4:  # characters: up to 4 bytes each
                size = len((text_data or "").encode())
        if size > self.runtime.config.max_message_bytes:
            await self.close_with(TOO_LARGE, Reason.TOO_LARGE)
            return
        if bytes_data is not None:
            await self.close_with(UNSUPPORTED, Reason.CLIENT_CLOSED)
            return
        try:
            message = json.loads(text_data or "")
        except ValueError:
            await self.close_with(BAD_PAYLOAD, Reason.CLIENT_CLOSED)
            return
        kind = message.get("type") if isinstance(message, dict) else None
        self.runtime.heard(self, heartbeat=kind == "heartbeat")
        if kind == "heartbeat":
            await self.send_json({"type": "heartbeat_ack", "id": message.get("id")})

    async def websocket_disconnect(self, message: dict) -> None:
        # The row first: leaving the groups is a channel-layer round trip each (Redis).
        await self.disconnect(message.get("code", 1005))
        await super().websocket_disconnect(message)

    async def disconnect(self, code: int) -> None:
        if self.runtime is None or not self.connection_id or self.closing:
            return
        self.closing = True
        reason = Reason.TOO_LARGE if code == TOO_LARGE else Reason.CLIENT_CLOSED
        self.runtime.settle(self, reason=reason, code=code)

    async def close_with(self, code: int, reason: str, *, settle: bool = True) -> None:
        """Close from the server side with ``code``; the row is settled with ``reason``."""
        if self.closing:
            return
        self.closing = True
        if self.runtime is not None:
            if settle:
                self.runtime.settle(self, reason=reason, code=code)
            else:
                self.runtime.forget(self, reason=reason)
        await self.close(code)

    async def send_json(self, content: dict) -> None:
        await self.send(text_data=json.dumps(content, separators=(",", ":")))

    # --- from the channel layer ---------------------------------------------------------
    async def realtime_event(self, message: dict) -> None:
        """An event for this user (or everyone), serialized once by the sender."""
        if not self.closing:
            await self.send(text_data=message["text"])

    async def realtime_signed_out(self, message: dict) -> None:
        """A sign-out: close at once if it ended the browser session this socket rides on."""
        digest = self.identity.session_digest if self.connection_id else ""
        if digest and message.get("session") == digest:
            await self.close_with(4401, Reason.SIGNED_OUT)
