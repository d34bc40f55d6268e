"""The local Graph: ``/v1.0/me`` and ``/v1.0/users/{id}``, their photos, and the checks Graph makes of a token."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime
from http.client import HTTPMessage
from typing import Any

import jwt

from devtools.local_entra.tokens import SigningKeys
from devtools.local_entra.users import LocalUser
from devtools.local_server import Response, json_response

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"

# Graph permissions that let a token read /users/{id} (delegated scopes and application roles).
_USERS_READ_SCOPES = frozenset(
    {"User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.AccessAsUser.All"}
)
_USERS_READ_ROLES = frozenset({"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"})
_ME_SCOPES = frozenset({"User.Read", "User.ReadWrite", *_USERS_READ_SCOPES})
_GRAPH_USER_PROPERTIES = (
    "id",
    "displayName",
    "mail",
    "userPrincipalName",
    "companyName",
    "department",
    "jobTitle",
)
# What real Graph answers without $select (of the properties above).
_GRAPH_DEFAULT_PROPERTIES = ("id", "displayName", "mail", "userPrincipalName", "jobTitle")


class _GraphError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Graph:
    """Graph over LocalEntra's users, a mixin of it: it reads these attributes, and find_user, issuer and _now."""

    url: str
    graph_url: str
    tenants: set[str]
    graph_strict_select: bool
    graph_requests: Counter[str]
    _signing_keys: SigningKeys
    _lock: threading.RLock

    def verify_graph_token(self, token: str) -> dict[str, Any]:
        """The claims of a token Graph would accept: signed with a listed key, aud Graph, in its lifetime."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _GraphError(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed.") from None
        if header.get("alg") != "RS256":
            raise _GraphError(401, "InvalidAuthenticationToken", "Access token validation failure.")
        key = self._signing_keys.find(header.get("kid"))
        if key is None:
            raise _GraphError(401, "InvalidAuthenticationToken", "Access token validation failure.")
        try:
            claims = jwt.decode(
                token,
                key.private_key.public_key(),
                algorithms=["RS256"],
                audience=[GRAPH_APP_ID, GRAPH_RESOURCE, self.graph_url],
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "require": ["exp", "tid"]},
            )
        except jwt.InvalidAudienceError:
            raise _GraphError(
                401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience."
            ) from None
        except jwt.InvalidTokenError:
            raise _GraphError(401, "InvalidAuthenticationToken", "Access token validation failure.") from None
        now = self._now()
        if not (claims.get("nbf", 0) <= now + 300 and now < claims["exp"]):
            raise _GraphError(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
        tid = claims["tid"]
        if tid not in self.tenants or claims.get("iss") not in (self.issuer(tid), self.issuer_v1(tid)):
            raise _GraphError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid issuer.")
        return claims

    def _graph(self, method: str, path: str, query: dict[str, str], headers: HTTPMessage) -> Response:
        """A request to ``path``, under /v1.0/."""
        with self._lock:
            self.graph_requests[path] += 1
        segments = path.strip("/").split("/")[1:]
        try:
            return self._graph_answer(method, segments, query, headers)
        except _GraphError as error:
            return self._graph_error(error)

    def _graph_answer(self, method: str, segments: list[str], query: dict[str, str], headers: HTTPMessage) -> Response:
        if method != "GET" or not segments:
            return self._graph_error(_GraphError(404, "Request_ResourceNotFound", "Resource not found."))
        authorization = headers.get("Authorization") or ""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        claims = self.verify_graph_token(token.strip())
        scp = set((claims.get("scp") or "").split())
        roles = set(claims.get("roles") or [])
        app_only = claims.get("idtyp") == "app" or not scp

        if segments[0] == "me":
            if app_only:
                raise _GraphError(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
            if not scp & _ME_SCOPES:
                raise _GraphError(
                    403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
                )
            user = self.find_user(claims.get("oid", ""), tid=claims["tid"])
            rest = segments[1:]
            if user is None:
                raise _GraphError(404, "Request_ResourceNotFound", f"Resource '{claims.get('oid')}' does not exist.")
        elif segments[0] == "users" and len(segments) >= 2:
            user = self.find_user(segments[1], tid=claims["tid"])
            rest = segments[2:]
            allowed = (
                roles & (_USERS_READ_ROLES | {"ProfilePhoto.Read.All"})
                if app_only
                else scp & _USERS_READ_SCOPES or (user is not None and user.oid == claims.get("oid"))
            )
            if not allowed:
                raise _GraphError(
                    403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
                )
            if user is None:
                raise _GraphError(
                    404,
                    "Request_ResourceNotFound",
                    f"Resource '{segments[1]}' does not exist or one of its queried reference-property objects "
                    "are not present.",
                )
        else:
            raise _GraphError(400, "BadRequest", f"Resource not found for the segment '{segments[0]}'.")

        if not rest:
            return json_response(200, self._graph_user(user, query.get("$select")), content_type=GRAPH_JSON)
        if rest == ["photo", "$value"]:
            return self._graph_photo(user, headers.get("If-None-Match"))
        raise _GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[0]}'.")

    def _graph_user(self, user: LocalUser, select: str | None) -> dict[str, Any]:
        values = {
            "id": user.oid,
            "displayName": user.name,
            "mail": user.email,
            "userPrincipalName": user.user_principal_name,
            "companyName": user.company_name,
            "department": user.department,
            "jobTitle": user.job_title,
        }
        if select:
            wanted = []
            for name in (part.strip() for part in select.split(",") if part.strip()):
                match = next((p for p in _GRAPH_USER_PROPERTIES if p.lower() == name.lower()), None)
                if match is None:
                    raise _GraphError(
                        400,
                        "Request_BadRequest",
                        f"Could not find a property named '{name}' on type 'microsoft.graph.user'.",
                    )
                wanted.append(match)
            context = f"{self.graph_url}/v1.0/$metadata#users({','.join(wanted)})/$entity"
        else:
            wanted = list(_GRAPH_DEFAULT_PROPERTIES if self.graph_strict_select else _GRAPH_USER_PROPERTIES)
            context = f"{self.graph_url}/v1.0/$metadata#users/$entity"
        return {"@odata.context": context, **{name: values[name] for name in wanted}}

    def _graph_photo(self, user: LocalUser, if_none_match: str | None) -> Response:
        if not user.photo:
            raise _GraphError(404, "ImageNotFound", "The photo wasn't found.")
        etag = f'"{hashlib.sha256(user.photo).hexdigest()[:16]}"'
        if if_none_match:
            candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
            if "*" in candidates or etag in candidates:
                return Response(304, headers={"ETag": etag})
        return Response(200, user.photo, _image_type(user.photo), headers={"ETag": etag})

    def _graph_error(self, error: _GraphError) -> Response:
        body = {
            "error": {
                "code": error.code,
                "message": error.message,
                "innerError": {
                    "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": str(uuid.uuid4()),
                    "client-request-id": str(uuid.uuid4()),
                },
            }
        }
        headers = {}
        if error.status == 401:
            headers["WWW-Authenticate"] = (
                f'Bearer realm="", authorization_uri="{self.url}/common/oauth2/authorize", client_id="{GRAPH_APP_ID}"'
            )
        return json_response(error.status, body, content_type=GRAPH_JSON, headers=headers)


def _image_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    return "application/octet-stream"
