"""Channels' ``AllowedHostsOriginValidator``, except that a bearer client may come without an Origin.

A present Origin must match ``ALLOWED_HOSTS`` for every client. A missing one is
refused, as Channels does, unless the handshake carries an access token as a
subprotocol: API clients send no Origin, and their token, not an ambient cookie, is
what authenticates them (the consumer then accepts only that token).
"""

from __future__ import annotations

from urllib.parse import urlparse

from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings

from realtime.auth import TOKEN_PREFIX, offered_subprotocols


class BearerAwareOriginValidator(OriginValidator):
    def __init__(self, application) -> None:
        super().__init__(application, allowed_origins=[])

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            raise ValueError("BearerAwareOriginValidator serves WebSocket connections only")
        self.allowed_origins = self._allowed()
        origin = None
        for name, value in scope.get("headers", []):
            if name == b"origin":
                try:
                    origin = urlparse(value.decode("latin1"))
                except (UnicodeDecodeError, ValueError):
                    origin = urlparse("invalid://")
        if origin is None:
            bearer = any(p.startswith(TOKEN_PREFIX) for p in offered_subprotocols(scope))
            ok = bearer or "*" in self.allowed_origins
        else:
            ok = self.validate_origin(origin)
        if ok:
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)

    @staticmethod
    def _allowed() -> list[str]:
        hosts = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not hosts:
            hosts = ["localhost", "127.0.0.1", "[::1]"]
        return hosts
