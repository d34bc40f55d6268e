"""The local Entra's token endpoint: client authentication (secret or certificate) and its three grants."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPMessage
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from devtools.local_entra.graph import GRAPH_APP_ID, GRAPH_RESOURCE
from devtools.local_entra.oauth import TENANT_ALIASES, AuthCode, OAuthError
from devtools.local_entra.tokens import b64url, encode_client_info
from devtools.local_entra.users import LocalUser
from devtools.local_server import Response, json_response

OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
DEFAULT_API_SCOPE = "access_as_user"  # what a delegated "{api_audience}/.default" grants


@dataclass
class RefreshGrant:
    client_id: str
    oid: str
    scopes: list[str]
    sid: str
    revoked: bool = False


class TokenEndpoint:
    """Entra's /oauth2/v2.0/token for LocalEntra, a mixin of it; it reads these attributes, and the tokens' methods."""

    url: str
    graph_url: str
    client_id: str
    client_secret: str
    client_certificates: list[x509.Certificate]
    tenant_id: str
    api_audience: str | None
    api_token_version: int
    access_token_lifetime: int
    users: dict[str, LocalUser]
    token_requests: list[dict[str, str]]
    id_token_hook: Callable[[dict[str, Any]], str] | None
    _codes: dict[str, AuthCode]
    _refresh_grants: dict[str, RefreshGrant]
    _lock: threading.RLock

    def revoke_refresh_tokens(self, user: LocalUser | None = None) -> int:
        """Revoke every refresh token (of ``user``); returns how many."""
        with self._lock:
            revoked = 0
            for grant in self._refresh_grants.values():
                if not grant.revoked and (user is None or grant.oid == user.oid):
                    grant.revoked = True
                    revoked += 1
            return revoked

    # the endpoint

    def _token(self, tenant: str, *, headers: HTTPMessage, body: bytes, **_: Any) -> Response:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        with self._lock:
            self.token_requests.append(dict(form))
        self._authenticate_client(form, headers.get("Authorization"))
        grant_type = form.get("grant_type", "")
        if grant_type == "authorization_code":
            answer = self._redeem_code(form)
        elif grant_type == "refresh_token":
            answer = self._redeem_refresh_token(form)
        elif grant_type == "client_credentials":
            answer = self._client_credentials(tenant, form)
        elif not grant_type:
            raise OAuthError(
                "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."
            )
        else:
            raise OAuthError(
                "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant_type}'."
            )
        return json_response(200, answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _authenticate_client(self, form: dict[str, str], authorization: str | None) -> None:
        if form.get("client_assertion"):
            return self._authenticate_client_assertion(form)
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode()
                basic_id, _, basic_secret = decoded.partition(":")
            except ValueError:
                raise OAuthError("invalid_client", 7000215, "Invalid client secret provided.", status=401) from None
            client_id = client_id or unquote_plus(basic_id)
            secret = secret or unquote_plus(basic_secret)
        if not client_id:
            raise OAuthError(
                "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'."
            )
        if client_id != self.client_id:
            raise OAuthError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory.",
            )
        if not secret:
            raise OAuthError(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                status=401,
            )
        if not hmac.compare_digest(secret.encode(), self.client_secret.encode()):
            raise OAuthError(
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
                f"value, not the client secret ID, for a secret added to app '{self.client_id}'.",
                status=401,
            )

    def _authenticate_client_assertion(self, form: dict[str, str]) -> None:
        """private_key_jwt: an RS256 or PS256 assertion signed with a registered certificate's key."""
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            raise OAuthError("invalid_request", 90002, "client_assertion_type must be jwt-bearer.")
        assertion = form["client_assertion"]
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            raise OAuthError("invalid_client", 700025, "Client assertion is malformed.", status=401) from None
        for certificate in self.client_certificates:
            thumbprints = {
                "x5t#S256": base64.urlsafe_b64encode(certificate.fingerprint(hashes.SHA256())).rstrip(b"=").decode(),
                "x5t": base64.urlsafe_b64encode(certificate.fingerprint(hashes.SHA1())).rstrip(b"=").decode(),  # noqa: S303 (Entra's x5t is SHA-1)
            }
            if any(str(header.get(name, "")).rstrip("=") == value for name, value in thumbprints.items()):
                break
        else:
            raise OAuthError(
                "invalid_client",
                700027,
                "The certificate with identifier used to sign the client assertion is not registered on application.",
                status=401,
            )
        try:
            claims = jwt.decode(
                assertion,
                certificate.public_key(),
                algorithms=["RS256", "PS256"],
                options={"require": ["exp", "iss", "sub", "aud"], "verify_aud": False},
            )
        except jwt.PyJWTError as exc:
            raise OAuthError(
                "invalid_client", 700027, f"Client assertion failed signature validation: {exc}", status=401
            ) from None
        audience = claims["aud"]
        if not (
            isinstance(audience, str) and audience.startswith(self.url) and audience.endswith("/oauth2/v2.0/token")
        ):
            raise OAuthError("invalid_client", 700024, "Client assertion audience claim does not match.", status=401)
        if claims["iss"] != self.client_id or claims["sub"] != self.client_id:
            raise OAuthError("unauthorized_client", 700016, "Client assertion is not for this application.", status=401)

    def _redeem_code(self, form: dict[str, str]) -> dict[str, Any]:
        code = form.get("code")
        if not code:
            raise OAuthError(
                "invalid_request", 900144, "The request body must contain the following parameter: 'code'."
            )
        with self._lock:
            grant = self._codes.get(code)
            if grant is None:
                raise OAuthError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
            if grant.redeemed:
                raise OAuthError(
                    "invalid_grant",
                    54005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an "
                    "existing refresh token.",
                )
            if self._now() >= grant.expires_at:
                raise OAuthError(
                    "invalid_grant", 70008, "The provided authorization code or refresh token has expired."
                )
            if grant.client_id != form.get("client_id", self.client_id):
                raise OAuthError("invalid_grant", 70000, "The code was issued to another client.")
            if grant.redirect_uri != form.get("redirect_uri"):
                raise OAuthError(
                    "invalid_grant",
                    70000,
                    "The redirect_uri does not match the one of the authorization request.",
                )
            verifier = form.get("code_verifier")
            if not verifier:
                raise OAuthError(
                    "invalid_grant", 501481, "The code_verifier is missing: the authorization request used PKCE."
                )
            challenge = b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
            if not hmac.compare_digest(challenge, grant.code_challenge):
                raise OAuthError(
                    "invalid_grant",
                    50148,
                    "The code_verifier does not match the code_challenge supplied in the authorization request "
                    "for PKCE.",
                )
            grant.redeemed = True
        scopes = form["scope"].split() if form.get("scope") else grant.scopes
        return self._user_tokens(
            self._granted_user(grant.oid),
            scopes=scopes,
            nonce=grant.nonce,
            sid=grant.sid,
            client_info=form.get("client_info") == "1",
            offline=("offline_access" in scopes or "offline_access" in grant.scopes),
            grant_scopes=sorted(set(grant.scopes) | set(scopes)),
        )

    def _redeem_refresh_token(self, form: dict[str, str]) -> dict[str, Any]:
        token = form.get("refresh_token")
        if not token:
            raise OAuthError(
                "invalid_request", 900144, "The request body must contain the following parameter: 'refresh_token'."
            )
        with self._lock:
            grant = self._refresh_grants.get(token)
        if grant is None:
            raise OAuthError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        if grant.revoked:
            raise OAuthError(
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token is needed.",
            )
        if grant.client_id != form.get("client_id", self.client_id):
            raise OAuthError("invalid_grant", 70000, "The refresh token was issued to another client.")
        scopes = form["scope"].split() if form.get("scope") else grant.scopes
        return self._user_tokens(
            self._granted_user(grant.oid),
            scopes=scopes,
            nonce=None,
            sid=grant.sid,
            client_info=form.get("client_info") == "1",
            offline=True,
            grant_scopes=sorted(set(grant.scopes) | set(scopes)),
        )

    def _user_tokens(
        self,
        user: LocalUser,
        *,
        scopes: list[str],
        nonce: str | None,
        sid: str,
        client_info: bool,
        offline: bool,
        grant_scopes: list[str],
    ) -> dict[str, Any]:
        audience, granted, answer_scopes = self._resolve_scopes(scopes)
        if audience == GRAPH_APP_ID:
            # Graph's tokens are v1 whatever the endpoint, and carry the OIDC scopes too.
            oidc = [s for s in ("openid", "profile", "email") if s in scopes]
            access = self.access_token(user, audience=GRAPH_APP_ID, scp=" ".join([*oidc, *granted]), version=1)
        else:
            access = self.access_token(
                user,
                audience=audience,
                scp=" ".join(granted),
                roles=list(user.roles) or None,
                version=self.api_token_version,
            )
        answer: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join([*answer_scopes, *(s for s in ("openid", "profile", "email") if s in scopes)]),
            "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime,
            "access_token": access,
        }
        if offline:
            refresh = self._remember(secrets.token_urlsafe(64))
            with self._lock:
                self._refresh_grants[refresh] = RefreshGrant(
                    client_id=self.client_id, oid=user.oid, scopes=grant_scopes, sid=sid
                )
            answer["refresh_token"] = refresh
        if "openid" in scopes or "openid" in grant_scopes:
            claims = self.id_token_claims(user, nonce=nonce, sid=sid)
            hook = self.id_token_hook
            answer["id_token"] = self._remember(hook(claims)) if hook else self.sign(claims)
        if client_info:
            answer["client_info"] = encode_client_info(user)
        return answer

    def _client_credentials(self, tenant: str, form: dict[str, str]) -> dict[str, Any]:
        scope = form.get("scope", "").strip()
        if not scope.endswith("/.default") or " " in scope:
            raise OAuthError(
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows must have a scope "
                "value with /.default suffixed to the resource identifier (application ID URI).",
            )
        resource = scope.removesuffix("/.default")
        tid = self.tenant_id if tenant in TENANT_ALIASES else tenant
        if resource in self._graph_resources:
            access = self.access_token(None, audience=GRAPH_APP_ID, roles=["User.Read.All"], version=1, tid=tid)
        elif self.api_audience and resource == self.api_audience:
            access = self.access_token(None, audience=self.api_audience, version=self.api_token_version, tid=tid)
        else:
            raise OAuthError(
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named {tid}.",
            )
        return {
            "token_type": "Bearer",
            "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime,
            "access_token": access,
        }

    def _granted_user(self, oid: str) -> LocalUser:
        user = self.users.get(oid)
        if user is None:
            raise OAuthError("invalid_grant", 50034, f"The user account {oid} does not exist in the directory.")
        if not user.account_enabled:
            raise OAuthError("invalid_grant", 50057, "The user account is disabled.")
        return user

    @property
    def _graph_resources(self) -> tuple[str, ...]:
        return (GRAPH_RESOURCE, GRAPH_APP_ID, self.graph_url)

    def _resolve_scopes(self, scopes: list[str]) -> tuple[str, list[str], list[str]]:
        """(audience, scp values, scopes to answer) of the resource the requested scopes name."""
        by_resource: dict[str, tuple[list[str], list[str]]] = {}
        for scope in scopes:
            if scope in OIDC_SCOPES:
                continue
            audience, name = self._scope_resource(scope)
            granted, answered = by_resource.setdefault(audience, ([], []))
            if name == ".default":
                name = "User.Read" if audience == GRAPH_APP_ID else DEFAULT_API_SCOPE
                scope = name if audience == GRAPH_APP_ID else f"{audience}/{name}"
            granted.append(name)
            answered.append(scope)
        if len(by_resource) > 1:
            raise OAuthError(
                "invalid_scope",
                28000,
                "Provided value for the input parameter scope is not valid because it contains more than one resource.",
            )
        if not by_resource:
            # User.Read is the permission every registration starts with, and Entra grants it with openid.
            return GRAPH_APP_ID, ["User.Read"], ["User.Read"]
        audience, (granted, answered) = next(iter(by_resource.items()))
        return audience, granted, answered

    def _scope_resource(self, scope: str) -> tuple[str, str]:
        if self.api_audience and scope.startswith(self.api_audience + "/"):
            return self.api_audience, scope[len(self.api_audience) + 1 :]
        for prefix in self._graph_resources:
            if scope.startswith(prefix + "/"):
                return GRAPH_APP_ID, scope[len(prefix) + 1 :]
        if "/" in scope or ":" in scope:
            raise OAuthError(
                "invalid_resource",
                500011,
                f"The resource principal named {scope.rsplit('/', 1)[0]} was not found in the tenant.",
            )
        return GRAPH_APP_ID, scope
