"""LocalEntra: the state tests steer and read, reset() back to construction, and the routing of requests.

What it answers lives in the mixins: ``oauth`` (discovery, keys, authorize,
logout), ``token_endpoint``, ``graph``, and ``tokens`` (keys and signing);
``local_server`` serves them over HTTPS.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Callable
from http.client import HTTPMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from cryptography import x509

from devtools.local_entra.graph import Graph
from devtools.local_entra.oauth import AuthCode, OAuth
from devtools.local_entra.pages import AuthorizeResponse, press_sign_in
from devtools.local_entra.token_endpoint import RefreshGrant, TokenEndpoint
from devtools.local_entra.tokens import SigningKeys, TokenIssuer
from devtools.local_entra.users import LocalUser
from devtools.local_server import LocalServer, Response


class LocalEntra(OAuth, TokenEndpoint, Graph, TokenIssuer, LocalServer):
    """Entra ID v2.0 and Graph on ``https://127.0.0.1:<port>``; see the package docstring."""

    name = "local Entra"
    server_version = "LocalEntra/1.0"

    def __init__(
        self,
        *,
        cert_dir: Path,
        users: list[LocalUser],
        tenant_id: str,
        client_id: str,
        client_secret: str,
        api_audience: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        redirect_uris: list[str] | None = None,
        api_token_version: int = 2,
        strict_tenants: bool = False,
        graph_strict_select: bool = False,
    ) -> None:
        super().__init__(cert_dir=cert_dir, host=host, port=port)
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.api_audience = api_audience.rstrip("/") if api_audience else None
        self._lock = threading.RLock()
        self._signing_keys = SigningKeys()
        # What reset() returns to: copies, so that neither the caller nor a test changes them.
        self._initial_users = copy.deepcopy(list(users))
        self._initial_redirect_uris = list(redirect_uris) if redirect_uris is not None else None
        self._initial_api_token_version = api_token_version
        self._initial_strict_tenants = strict_tenants
        self._initial_graph_strict_select = graph_strict_select
        self.reset()

    def reset(self) -> None:
        """Back to the state of construction: its users, its first signing key, its settings, no fault, no record.

        A server shared by many tests resets before each, so that none sees what an earlier one changed.
        """
        super().reset()
        self._signing_keys.reset()
        with self._lock:
            # Keyed by oid; replacing an entry changes what the next token (refresh included) says.
            self.users: dict[str, LocalUser] = {user.oid: copy.deepcopy(user) for user in self._initial_users}

            # Settings, as the app's registration and the tenant would have them.
            # When set, the authorize endpoint refuses other redirect URIs (AADSTS50011), as a registration would.
            self.redirect_uris = copy.copy(self._initial_redirect_uris)
            self.api_token_version = self._initial_api_token_version
            # Entra signs in at a concrete tenant only that tenant's users (and guests, whose tokens then carry
            # that tenant's tid and their oid there). By default any user may sign in anywhere; strict_tenants
            # keeps a concrete tenant's page to its own users.
            self.strict_tenants = self._initial_strict_tenants
            # Graph answers companyName and department only when $select asks for them; False: always.
            self.graph_strict_select = self._initial_graph_strict_select
            # Certificates registered for the app: a client may authenticate with a
            # signed assertion (private_key_jwt) instead of the secret.
            self.client_certificates: list[x509.Certificate] = []
            self.access_token_lifetime = 3600
            self.clock_offset = 0.0  # seconds added to the server's clock: lets tests age codes and tokens

            # Faults to inject (``unreachable``, from LocalServer, closes every connection unanswered).
            self.jwks_down = False
            self.next_authorize_error: tuple[str, str] | None = None  # (error, description), answered once
            # When set, the token endpoint's id token is id_token_hook(claims) instead of the signed claims:
            # the real flow then delivers a forged token.
            self.id_token_hook: Callable[[dict[str, Any]], str] | None = None

            # What it saw and handed out.
            self.issued: list[str] = []  # every code, token and refresh token
            self.jwks_requests = 0
            self.token_requests: list[dict[str, str]] = []
            self.logout_requests: list[dict[str, str]] = []
            self.graph_requests: Counter[str] = Counter()
            self.request_log: list[tuple[str, str]] = []  # (method, path without query) of every request
            self._codes: dict[str, AuthCode] = {}
            self._refresh_grants: dict[str, RefreshGrant] = {}

    # addresses

    @property
    def graph_url(self) -> str:
        """Base URL of the local Graph (what ``https://graph.microsoft.com`` is in production)."""
        return self.url

    def authority(self, tenant: str | None = None) -> str:
        return f"{self.url}/{tenant or self.tenant_id}"

    # users

    @property
    def tenants(self) -> set[str]:
        return {self.tenant_id, *(user.tid for user in self.users.values())}

    def add_user(self, user: LocalUser) -> LocalUser:
        self.users[user.oid] = user
        return user

    def find_user(self, key: str, *, tid: str | None = None) -> LocalUser | None:
        """The user whose oid, or user principal name, is ``key`` (case-insensitive)."""
        key = key.lower()
        for user in self.users.values():
            if tid is not None and user.tid != tid:
                continue
            if user.oid.lower() == key or user.user_principal_name.lower() == key:
                return user
        return None

    # the browser, for tests

    def sign_in(self, auth_uri: str, user: LocalUser, *, session: Any = None) -> AuthorizeResponse:
        """Act as the browser: open ``auth_uri``, press ``user``'s button, return where it sends us back.

        Raises AssertionError with the page's text when the server shows an error page.
        """
        return press_sign_in(session or self.http_session(), auth_uri, user)

    def _handle(self, method: str, target: str, headers: HTTPMessage, body: bytes) -> Response:
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        with self._lock:
            self.request_log.append((method, path))
        if path.strip("/").split("/")[0] == "v1.0":
            return self._graph(method, path, query, headers)
        return self._entra(method, path, query, headers, body)
