"""The GitHub App: its RSA key, the JWT it signs, its installations and their tokens.

One installation per owner, as GitHub installs an App on an account, with the
owner's repositories created ``installed=True`` selected. An installation token
is good for the repositories it was scoped to, with the permissions it was
given, for one hour (``clock_offset`` ages it; tests can also expire or revoke it).
"""

from __future__ import annotations

import secrets
import string
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.local_github.repos import Repo
from devtools.local_github.request import ApiError, Request
from devtools.local_server import Response, json_response

JWT_MAX_LIFETIME_S = 600
JWT_LEEWAY_S = 60
TOKEN_LIFETIME_S = 3600
LEVELS = {"read": 1, "write": 2, "admin": 3}
NOT_ACCESSIBLE = "There is at least one repository that does not exist or is not accessible to the parent installation."


def new_token(prefix: str) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(36))


def load_or_generate_key(private_key: rsa.RSAPrivateKey | bytes | None) -> rsa.RSAPrivateKey:
    if private_key is None:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if isinstance(private_key, bytes):
        key = serialization.load_pem_private_key(private_key, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError("the App's key must be an RSA key")
        return key
    return private_key


def expires_iso(timestamp: float) -> str:
    return f"{datetime.fromtimestamp(int(timestamp), tz=UTC):%Y-%m-%dT%H:%M:%SZ}"


def _granted(asked: object, granted: dict[str, str]) -> bool:
    return isinstance(asked, dict) and all(
        LEVELS.get(str(level), 99) <= LEVELS.get(granted.get(scope, ""), 0) for scope, level in asked.items()
    )


@dataclass
class InstallationToken:
    token: str
    installation_id: int
    owner: str  # lower-case
    repositories: frozenset[str] | None  # lower-case names; None: every repository of the installation
    permissions: dict[str, str]
    expires_at: float
    revoked: bool = False

    def covers(self, repo: Repo) -> bool:
        return repo.owner.lower() == self.owner and (
            self.repositories is None or repo.name.lower() in self.repositories
        )


@dataclass(frozen=True)
class TokenRequest:
    """What the App asked for when it requested an installation token."""

    installation_id: int
    repositories: list[str] | None
    permissions: dict[str, str] | None
    token: str


class AppAuth:
    """The App's half of LocalGitHub (``server.LocalGitHub`` holds the state)."""

    _lock: threading.RLock
    _private_key: rsa.RSAPrivateKey
    _repos: dict[tuple[str, str], Repo]
    _installation_tokens: dict[str, InstallationToken]
    _installations: dict[str, int]  # owner (lower-case) -> installation id, in the order first asked
    token_requests: list[TokenRequest]
    installation_permissions: dict[str, str]
    app_id: str
    app_slug: str
    url: str

    # the key, for settings and tests

    def private_key_pem(self) -> bytes:
        """The App's private key as GitHub hands it out: PKCS#1 PEM (``BEGIN RSA PRIVATE KEY``)."""
        return self._private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    def write_private_key(self, path: str | Path) -> Path:
        """Write the private key to ``path`` (readable by its owner only), for GITHUB_APP_PRIVATE_KEY_FILE."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_bytes(self.private_key_pem())
        return path

    def app_jwt(self, *, iat: float | None = None, exp: float | None = None, iss: Any = None, key: Any = None) -> str:
        """A JWT as the App signs it (backdated 60 s, 9 minutes ahead); each part can be overridden to forge one."""
        now = int(self.clock())
        claims = {
            "iat": int(now - 60 if iat is None else iat),
            "exp": int(now + 540 if exp is None else exp),
            "iss": self.app_id if iss is None else iss,
        }
        return jwt.encode(claims, key or self._private_key, algorithm="RS256")

    # installations, for tests

    def installation_id(self, owner: str) -> int | None:
        """The id of the App's installation on ``owner``: None when none of its repositories has the App."""
        owner = owner.lower()
        with self._lock:
            if not any(key[0] == owner and repo.installed for key, repo in self._repos.items()):
                return None
            return self._installations.setdefault(owner, 1000 + len(self._installations))

    def expire_installation_tokens(self, token: str | None = None) -> None:
        """Make ``token`` (None: every installation token) expired, as an hour later."""
        with self._lock:
            for record in self._tokens_matching(token):
                record.expires_at = self.clock() - 1

    def revoke_installation_tokens(self, token: str | None = None) -> None:
        with self._lock:
            for record in self._tokens_matching(token):
                record.revoked = True

    def _tokens_matching(self, token: str | None) -> list[InstallationToken]:
        return [t for t in self._installation_tokens.values() if token is None or t.token == token]

    # endpoints

    def _verify_app_jwt(self, request: Request) -> None:
        if request.auth.kind != "jwt":
            raise ApiError(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(
                request.auth.credential,
                self._private_key.public_key(),
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_iss": False},
            )
        except jwt.InvalidTokenError as exc:
            raise ApiError(401, "A JSON web token could not be decoded") from exc
        now = self.clock()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or isinstance(iat, bool) or iat > now + JWT_LEEWAY_S:
            raise ApiError(401, "'Issued at' claim ('iat') must be an Integer representing the time that the "
                                "assertion was issued")  # fmt: skip
        if not isinstance(exp, int) or isinstance(exp, bool) or exp <= now:
            raise ApiError(401, "'Expiration time' claim ('exp') must be a numeric value representing the future "
                                "time at which the assertion expires")  # fmt: skip
        if exp - iat > JWT_MAX_LIFETIME_S + JWT_LEEWAY_S:
            raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future")
        if str(claims.get("iss")) != self.app_id:
            raise ApiError(401, "'Issuer' claim ('iss') must be the App's id")

    def _get_installation(self, request: Request, owner: str, name: str) -> Response:
        self._verify_app_jwt(request)
        with self._lock:
            repo = self._repos.get((owner.lower(), name.lower()))
            if repo is None or not repo.installed:
                raise ApiError(404)
            installation_id = self.installation_id(repo.owner)
            return json_response(200, {
                "id": installation_id,
                "app_id": int(self.app_id),
                "app_slug": self.app_slug,
                "account": {"login": repo.owner, "type": "Organization"},
                "target_type": "Organization",
                "repository_selection": "selected",
                "permissions": dict(self.installation_permissions),
                "access_tokens_url": f"{self.url}/app/installations/{installation_id}/access_tokens",
            })  # fmt: skip

    def _create_installation_token(self, request: Request, installation_id: str) -> Response:
        self._verify_app_jwt(request)
        body = request.json()
        names, permissions = body.get("repositories"), body.get("permissions")
        with self._lock:
            owner = next((o for o, i in self._installations.items() if i == int(installation_id)), None)
            if owner is None or self.installation_id(owner) is None:
                raise ApiError(404)
            selected = {key[1]: repo for key, repo in self._repos.items() if key[0] == owner and repo.installed}
            if names is not None:
                if not isinstance(names, list) or any(str(n).lower() not in selected for n in names):
                    raise ApiError(422, NOT_ACCESSIBLE)
                selected = {str(n).lower(): selected[str(n).lower()] for n in names}
            granted = self.installation_permissions
            if permissions is not None and not _granted(permissions, granted):
                raise ApiError(422, "The permissions requested are not granted to this installation.")
            record = InstallationToken(
                token=new_token("ghs_"),
                installation_id=int(installation_id),
                owner=owner,
                repositories=frozenset(selected) if names is not None else None,
                permissions=dict(permissions if permissions is not None else granted),
                expires_at=self.clock() + TOKEN_LIFETIME_S,
            )
            self._installation_tokens[record.token] = record
            self.token_requests.append(TokenRequest(int(installation_id), names, permissions, record.token))
            return json_response(201, {
                "token": record.token,
                "expires_at": expires_iso(record.expires_at),
                "permissions": record.permissions,
                "repository_selection": "selected",
                "repositories": [
                    {"id": repo.id, "name": repo.name, "full_name": repo.full_name, "private": True}
                    for repo in selected.values()
                ],
            })  # fmt: skip

    def _authorize_installation(self, request: Request, repo: Repo, *, write: bool) -> None:
        """Let the request through when its installation token may read (or write) ``repo``; else 401 or 403."""
        if request.auth.kind == "none":
            raise ApiError(401, "Requires authentication")
        record = self._installation_tokens.get(request.auth.credential) if request.auth.kind == "installation" else None
        if record is None or record.revoked or record.expires_at <= self.clock() or not repo.installed:
            raise ApiError(401, "Bad credentials")
        if not record.covers(repo):
            # 401 so that a test sees the scoping; GitHub answers 404 for a private repository a token cannot see.
            raise ApiError(401, "Bad credentials")
        if LEVELS.get(record.permissions.get("contents", ""), 0) < (2 if write else 1):
            raise ApiError(403, "Resource not accessible by integration")
