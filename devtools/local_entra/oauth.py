"""The local Entra's v2.0 endpoints but the token endpoint: discovery, keys, authorize, logout; and their errors."""

from __future__ import annotations

import secrets
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http.client import HTTPMessage
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devtools.local_entra.pages import add_query, error_page, redirect_to_client, sign_in_page, signed_out_page
from devtools.local_entra.tokens import encode_client_info
from devtools.local_entra.users import LocalUser
from devtools.local_server import Response, json_response

TENANT_ALIASES = frozenset({"organizations", "common"})
CODE_LIFETIME_S = 600


@dataclass
class AuthCode:
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    scopes: list[str]
    oid: str
    sid: str
    expires_at: float
    redeemed: bool = False


class OAuthError(Exception):
    """An error of the token endpoint, rendered as Entra renders it."""

    def __init__(self, error: str, code: int, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.code = code
        self.description = description
        self.status = status


class PageError(Exception):
    """An error the authorize endpoint shows in the browser (no redirect: the redirect URI is not trusted)."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


class OAuth:
    """Entra's endpoints for LocalEntra, a mixin of it; it reads these attributes, and the tokens' methods."""

    url: str
    graph_url: str
    client_id: str
    tenants: set[str]
    users: dict[str, LocalUser]
    redirect_uris: list[str] | None
    strict_tenants: bool
    jwks_down: bool
    jwks_requests: int
    next_authorize_error: tuple[str, str] | None
    logout_requests: list[dict[str, str]]
    _codes: dict[str, AuthCode]
    _lock: threading.RLock

    def _entra(self, method: str, path: str, query: dict[str, str], headers: HTTPMessage, body: bytes) -> Response:
        """A request to ``path``, under /{tenant}/."""
        try:
            return self._entra_answer(method, path.strip("/").split("/"), query, headers, body)
        except OAuthError as error:
            return self._oauth_error(error)
        except PageError as error:
            return error_page(error.code, error.description)

    def _entra_answer(
        self, method: str, segments: list[str], query: dict[str, str], headers: HTTPMessage, body: bytes
    ) -> Response:
        if len(segments) < 2:
            return _not_found()
        tenant, rest = segments[0], "/".join(segments[1:])
        route = {
            ("GET", "v2.0/.well-known/openid-configuration"): self._discovery,
            ("GET", ".well-known/openid-configuration"): self._discovery_v1,
            ("GET", "discovery/v2.0/keys"): self._keys_endpoint,
            ("GET", "discovery/keys"): self._keys_endpoint,
            ("GET", "oauth2/v2.0/authorize"): self._authorize_get,
            ("POST", "oauth2/v2.0/authorize"): self._authorize_post,
            ("POST", "oauth2/v2.0/token"): self._token,
            ("GET", "oauth2/v2.0/logout"): self._logout,
        }.get((method, rest))
        if route is None:
            return _not_found()
        if tenant not in self.tenants and tenant not in TENANT_ALIASES:
            description = f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID."
            if rest.startswith("oauth2/v2.0/authorize") or rest.endswith("logout"):
                raise PageError(90002, description)
            raise OAuthError("invalid_tenant", 90002, description)
        return route(tenant, query=query, headers=headers, body=body)

    # Entra endpoints

    def openid_configuration(self, tenant: str) -> dict[str, Any]:
        base = f"{self.url}/{tenant}"
        issuer_tenant = "{tenantid}" if tenant in TENANT_ALIASES else tenant
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{self.url}/{issuer_tenant}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "acr",
                "nonce",
                "preferred_username",
                "name",
                "tid",
                "ver",
                "at_hash",
                "c_hash",
                "email",
            ],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "msgraph_host": urlsplit(self.graph_url).netloc,
        }

    def _discovery(self, tenant: str, **_: Any) -> Response:
        return json_response(200, self.openid_configuration(tenant))

    def _discovery_v1(self, tenant: str, **_: Any) -> Response:
        # v1 metadata: what a validator of v1 access tokens (issuer_v1, Entra's sts.windows.net) reads.
        base = f"{self.url}/{tenant}"
        issuer_tenant = "{tenantid}" if tenant in TENANT_ALIASES else tenant
        return json_response(
            200,
            {
                "issuer": self.issuer_v1(issuer_tenant),
                "jwks_uri": f"{base}/discovery/keys",
                "authorization_endpoint": f"{base}/oauth2/authorize",
                "token_endpoint": f"{base}/oauth2/token",
                "id_token_signing_alg_values_supported": ["RS256"],
            },
        )

    def _keys_endpoint(self, tenant: str, **_: Any) -> Response:
        with self._lock:
            self.jwks_requests += 1
            down = self.jwks_down
        if down:
            return Response(503, b"Service Unavailable", "text/plain; charset=utf-8", {"Retry-After": "1"})
        return json_response(200, self.jwks())

    def _validate_authorize(self, tenant: str, params: dict[str, str]) -> None:
        client_id = params.get("client_id")
        if not client_id:
            raise PageError(900144, "The request body must contain the following parameter: 'client_id'.")
        if client_id != self.client_id:
            raise PageError(
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'.",
            )
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri:
            raise PageError(900144, "The request body must contain the following parameter: 'redirect_uri'.")
        if self.redirect_uris is not None and redirect_uri not in self.redirect_uris:
            raise PageError(
                50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs "
                f"configured for the application '{client_id}'.",
            )
        if params.get("response_type") != "code":
            raise PageError(
                900144, f"The response_type '{params.get('response_type', '')}' is not supported here: use 'code'."
            )
        if not params.get("code_challenge"):
            raise PageError(
                900144, "The request must contain the following parameter: 'code_challenge' (PKCE is required)."
            )
        if params.get("code_challenge_method") != "S256":
            raise PageError(900144, "The code_challenge_method must be 'S256' (PKCE with SHA-256; 'plain' is refused).")
        if params.get("response_mode", "query") not in ("query", "form_post"):
            raise PageError(900144, f"The response_mode '{params['response_mode']}' is not supported here.")

    def _authorize_get(self, tenant: str, *, query: dict, **_: Any) -> Response:
        self._validate_authorize(tenant, query)
        early = self._early_authorize_error(query)
        if early is not None:
            return early
        users = self._signable_users(tenant)
        return sign_in_page(f"/{tenant}/oauth2/v2.0/authorize", query, users)

    def _authorize_post(self, tenant: str, *, body: bytes, **_: Any) -> Response:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        oid = form.pop("user", "")
        self._validate_authorize(tenant, form)
        early = self._early_authorize_error(form)
        if early is not None:
            return early
        user = next((u for u in self._signable_users(tenant) if u.oid == oid), None)
        if user is None:
            raise PageError(50020, f"User account '{oid}' does not exist in tenant '{tenant}'.")
        code = self._remember(secrets.token_urlsafe(48))
        sid = str(uuid.uuid4())
        with self._lock:
            self._codes[code] = AuthCode(
                client_id=form["client_id"],
                redirect_uri=form["redirect_uri"],
                code_challenge=form["code_challenge"],
                nonce=form.get("nonce"),
                scopes=form.get("scope", "").split(),
                oid=user.oid,
                sid=sid,
                expires_at=self._now() + CODE_LIFETIME_S,
            )
        params = {"code": code}
        if "state" in form:
            params["state"] = form["state"]
        params["session_state"] = sid
        if form.get("client_info") == "1":
            params["client_info"] = encode_client_info(user)
        return redirect_to_client(form["redirect_uri"], params, form.get("response_mode", "query"))

    def _early_authorize_error(self, params: dict[str, str]) -> Response | None:
        with self._lock:
            error, self.next_authorize_error = self.next_authorize_error, None
        if error is None and params.get("prompt") == "none":
            error = ("login_required", "AADSTS50058: A silent sign-in request was sent but no user is signed in.")
        if error is None:
            return None
        answer = {"error": error[0], "error_description": error[1]}
        if "state" in params:
            answer["state"] = params["state"]
        return redirect_to_client(params["redirect_uri"], answer, params.get("response_mode", "query"))

    def _signable_users(self, tenant: str) -> list[LocalUser]:
        if tenant in TENANT_ALIASES or not self.strict_tenants:
            return list(self.users.values())
        return [user for user in self.users.values() if user.tid == tenant]

    def _logout(self, tenant: str, *, query: dict, **_: Any) -> Response:
        with self._lock:
            self.logout_requests.append({"tenant": tenant, **query})
        target = query.get("post_logout_redirect_uri", "")
        if target and urlsplit(target).scheme in ("http", "https"):
            return signed_out_page(add_query(target, {"state": query["state"]}) if "state" in query else target)
        return signed_out_page(None)

    # errors

    def _oauth_error(self, error: OAuthError) -> Response:
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        body = {
            "error": error.error,
            "error_description": f"AADSTS{error.code}: {error.description} Trace ID: {trace} "
            f"Correlation ID: {correlation} Timestamp: {stamp}",
            "error_codes": [error.code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"{self.url}/error?code={error.code}",
        }
        return json_response(error.status, body, headers={"Cache-Control": "no-store"})


def _not_found() -> Response:
    return json_response(404, {"error": "not_found", "error_description": "Nothing here."})
