"""Bearer authentication: an Entra access token for this API, for HTTP requests and WebSocket scopes alike."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from accounts.entra.conf import entra_config
from accounts.entra.tokens import TokenError, validate_access_token
from accounts.models import User

logger = logging.getLogger("accounts.entra.bearer")


class BearerError(Exception):
    """Why a bearer token is not accepted, as RFC 6750 says it: ``error``, ``description``, HTTP ``status``."""

    def __init__(self, error: str, description: str, status: int) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    @property
    def www_authenticate(self) -> str:
        if self.error == "invalid_request":
            return 'Bearer realm="api"'
        safe = self.description.replace('"', "'")
        return f'Bearer error="{self.error}", error_description="{safe}"'


def bearer_token(request_or_scope: Any) -> str:
    """The token of an ``Authorization: Bearer`` header of a Django request or an ASGI scope ("" if none)."""
    if isinstance(request_or_scope, Mapping):  # an ASGI scope: headers are (bytes, bytes) pairs
        headers = dict(request_or_scope.get("headers") or [])
        value = headers.get(b"authorization", b"").decode("latin-1")
    else:
        value = request_or_scope.headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def authenticate_bearer(request_or_scope: Any, *, token: str | None = None) -> User:
    """The active user an access token for this API stands for; raises ``BearerError``.

    ``token`` given (a WebSocket subprotocol carries it) is used instead of the header.
    A valid token of an identity linked to nobody here is refused, and creates nobody.
    """
    token = bearer_token(request_or_scope) if token is None else token
    if not token:
        raise BearerError("invalid_request", "a bearer token is required", 401)
    try:
        claims = validate_access_token(token, config=entra_config())
    except TokenError as exc:
        logger.info("bearer token rejected: %s", exc.description)
        raise BearerError(exc.error, exc.description, 403 if exc.error == "insufficient_scope" else 401) from None
    user = User.objects.filter(
        azure_entra_id=claims["oid"].lower(), azure_tenant_id=claims["tid"], is_active=True
    ).first()
    if user is None:
        raise BearerError("insufficient_scope", "no active account here is linked to this identity", 403)
    return user
