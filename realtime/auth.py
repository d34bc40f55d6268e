"""Who a WebSocket handshake stands for, and whether they still may be connected.

Two ways in, never a third: the browser's session cookie (the Origin must be one of
ours, which ``realtime.security`` enforces before this runs), or an Entra access token
for this API carried as the subprotocol ``access_token.<JWT>`` beside ``platform.v1``,
validated exactly as ``/api/me`` validates a bearer header. A token in the URL is
refused: proxies log URLs. These functions touch the database and run in the
real-time database threads, never on the event loop.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import import_module
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.contrib import auth
from django.utils import timezone

from accounts.entra.bearer import BearerError, authenticate_bearer
from accounts.entra.conf import entra_config
from accounts.entra.tokens import TokenError, validate_access_token
from accounts.models import User

PROTOCOL = "platform.v1"
TOKEN_PREFIX = "access_token."  # noqa: S105 - a subprotocol prefix, not a secret
# Close codes of this protocol (RFC 6455 leaves 4000-4999 to applications).
UNAUTHORIZED, FORBIDDEN, SILENT = 4401, 4403, 4408
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.")
_TOKEN_PARAMS = {"access_token", "token", "id_token", "bearer", "jwt", "authorization"}


class Refused(Exception):
    """The handshake is refused (HTTP 403); ``reason`` is for the log, never for the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Identity:
    user_id: int
    method: str  # "cookie" or "bearer"
    subprotocol: str | None  # what the server answers (never the token)
    session_key: str = ""  # cookie: the Django session it rides on (kept in memory only)
    token_exp: float = 0.0  # bearer: when the token stops being valid (exp plus the clock leeway)
    tenant_id: str = ""

    @property
    def session_digest(self) -> str:
        return session_digest(self.session_key) if self.session_key else ""


def session_digest(session_key: str) -> str:
    """How a sign-out names the browser session whose sockets it closes (not the key itself)."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


def offered_subprotocols(scope: Mapping[str, Any]) -> list[str]:
    return [str(p).strip() for p in scope.get("subprotocols") or []]


def token_in_url(scope: Mapping[str, Any]) -> bool:
    query = scope.get("query_string", b"").decode("latin-1")
    if not query:
        return False
    if _JWT.search(query):
        return True
    return any(name.lower() in _TOKEN_PARAMS for name, _ in parse_qsl(query, keep_blank_values=True))


def header(scope: Mapping[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers") or []:
        if key == name:
            return value.decode("latin-1")
    return ""


def authenticate_handshake(scope: Mapping[str, Any]) -> Identity:
    """The identity of an incoming WebSocket, or ``Refused``."""
    if token_in_url(scope):
        raise Refused("a token in the URL")
    offered = offered_subprotocols(scope)
    tokens = [p[len(TOKEN_PREFIX) :] for p in offered if p.startswith(TOKEN_PREFIX)]
    if tokens:
        if len(tokens) != 1 or PROTOCOL not in offered:
            raise Refused(f"a bearer token needs exactly one {TOKEN_PREFIX}<JWT> beside {PROTOCOL}")
        return _bearer(scope, tokens[0])
    if not header(scope, b"origin"):
        raise Refused("a cookie client without an Origin")
    return _cookie(scope, PROTOCOL if PROTOCOL in offered else None)


def _bearer(scope: Mapping[str, Any], token: str) -> Identity:
    if not settings.ENTRA_ENABLED:
        raise Refused("bearer tokens need Entra sign-in (ENTRA_CLIENT_ID)")
    try:
        user = authenticate_bearer(scope, token=token)
        config = entra_config()
        claims = validate_access_token(token, config=config)  # recognised by the cache: no second RSA verify
    except (BearerError, TokenError) as exc:
        raise Refused(f"bearer token: {getattr(exc, 'description', exc)}") from None
    return Identity(
        user_id=user.pk,
        method="bearer",
        subprotocol=PROTOCOL,
        token_exp=float(claims["exp"]) + config.clock_skew_s,
        tenant_id=claims["tid"],
    )


def _cookie(scope: Mapping[str, Any], subprotocol: str | None) -> Identity:
    session = scope.get("session")
    if session is None or not getattr(session, "session_key", None):
        raise Refused("no session")
    user = auth.get_user(SimpleNamespace(session=session))
    if not user.is_authenticated or not user.is_active:
        raise Refused("the session is not signed in")
    return Identity(user_id=user.pk, method="cookie", subprotocol=subprotocol, session_key=session.session_key)


def recheck(identities: Iterable[tuple[str, Identity]]) -> list[tuple[str, int, str]]:
    """(connection id, close code, reason) for every connection that may no longer stay.

    One query for the users and one for the sessions (database sessions), however many
    connections: signed out or session expired (4401), bearer token expired (4401),
    account disabled or gone, tenant no longer allowed (4403).
    """
    from realtime.models import WebSocketSession

    Reason = WebSocketSession.Reason
    items = list(identities)
    if not items:
        return []
    users = {
        pk: (active, tenant)
        for pk, active, tenant in User.objects.filter(pk__in={i.user_id for _, i in items}).values_list(
            "pk", "is_active", "azure_tenant_id"
        )
    }
    allowed = set(entra_config().allowed_tenants) if settings.ENTRA_ENABLED else None
    live_sessions = _live_sessions({i.session_key for _, i in items if i.method == "cookie"})
    now = time.time()
    verdicts = []
    for connection_id, identity in items:
        active, tenant = users.get(identity.user_id, (False, None))
        tenant = identity.tenant_id or tenant
        if not active or (allowed is not None and tenant and tenant not in allowed):
            verdicts.append((connection_id, FORBIDDEN, Reason.DISABLED))
        elif identity.method == "bearer" and identity.token_exp <= now:
            verdicts.append((connection_id, UNAUTHORIZED, Reason.TOKEN_EXPIRED))
        elif identity.method == "cookie" and identity.session_key not in live_sessions:
            verdicts.append((connection_id, UNAUTHORIZED, Reason.SIGNED_OUT))
    return verdicts


def _live_sessions(keys: set[str]) -> set[str]:
    """The session keys that still exist and have not expired: one query with database sessions."""
    if not keys:
        return set()
    engine = import_module(settings.SESSION_ENGINE)
    store_class = engine.SessionStore
    from django.contrib.sessions.backends.db import SessionStore as DatabaseStore

    if issubclass(store_class, DatabaseStore):  # db and cached_db: the table holds every session
        model = store_class.get_model_class()
        return set(
            model.objects.filter(session_key__in=keys, expire_date__gt=timezone.now()).values_list(
                "session_key", flat=True
            )
        )
    return {key for key in keys if store_class().exists(key)}
