"""LocalGitHub: the state tests steer and read, reset() back to construction, and the routing of requests.

What it answers lives in the mixins: ``oauth`` (the web flow), ``app_auth`` (the
App's JWT and installation tokens), ``git_data`` (repositories, Git Data,
Contents), ``repos`` (the repositories' test API) and ``faults``;
``local_server`` serves them.
"""

from __future__ import annotations

import copy
import fnmatch
import itertools
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.client import HTTPMessage
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.local_github.app_auth import AppAuth, load_or_generate_key
from devtools.local_github.faults import Faults, RateLimits
from devtools.local_github.git_data import WRITE_METHODS, GitData
from devtools.local_github.oauth import GitHubUser, OAuth
from devtools.local_github.repos import Repositories
from devtools.local_github.request import ApiError, Auth, Request
from devtools.local_server import LocalServer, Response, json_response

API_VERSIONS = frozenset({"2022-11-28"})
_REPO = r"/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)"
# (method, path, handler): the first match answers; a path no route matches is a 404.
ROUTES = [
    (method, re.compile(pattern), handler)
    for method, pattern, handler in [
        ("GET", r"/login/oauth/authorize", "_authorize_page"),
        ("POST", r"/login/oauth/authorize", "_authorize_submit"),
        ("POST", r"/login/oauth/access_token", "_access_token"),
        ("GET", r"/user", "_get_user"),
        ("DELETE", r"/applications/(?P<client_id>[^/]+)/token", "_revoke_user_token"),
        ("POST", r"/app/installations/(?P<installation_id>\d+)/access_tokens", "_create_installation_token"),
        ("GET", _REPO + r"/installation", "_get_installation"),
        ("GET", _REPO, "_get_repo"),
        ("GET", _REPO + r"/git/ref/heads/(?P<branch>.+)", "_get_ref"),
        ("POST", _REPO + r"/git/refs", "_create_ref"),
        ("PATCH", _REPO + r"/git/refs/heads/(?P<branch>.+)", "_update_ref"),
        ("GET", _REPO + r"/git/commits/(?P<sha>[^/]+)", "_get_commit"),
        ("POST", _REPO + r"/git/commits", "_create_commit"),
        ("GET", _REPO + r"/git/trees/(?P<sha>[^/]+)", "_get_tree"),
        ("POST", _REPO + r"/git/trees", "_create_tree"),
        ("GET", _REPO + r"/git/blobs/(?P<sha>[^/]+)", "_get_blob"),
        ("POST", _REPO + r"/git/blobs", "_create_blob"),
        ("PUT", _REPO + r"/contents/(?P<path>.+)", "_put_contents"),
    ]
]
BROWSER_PATHS = frozenset({"/login/oauth/authorize"})  # pages a browser opens: no API version header


class LoggedRequest(NamedTuple):
    method: str
    path: str  # without the query
    auth: str  # none, jwt, installation, user, basic or other


class LocalGitHub(OAuth, AppAuth, GitData, Repositories, Faults, LocalServer):
    """GitHub's REST API and web flow on ``http://127.0.0.1:<port>``; see the package docstring."""

    name = "local GitHub"
    server_version = "LocalGitHub/1.0"
    # GitHub takes a tree of a few thousand inline files in one request (its 100 MB blob limit is the cap).
    max_body_bytes = 100 << 20

    def __init__(
        self,
        *,
        cert_dir: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        app_id: str = "1",
        app_slug: str = "local-github-app",
        client_id: str = "Iv1.local",
        client_secret: str = "local-github-secret",  # noqa: S107 (the stand-in's, as in settings)
        private_key: rsa.RSAPrivateKey | bytes | None = None,
        users: list[GitHubUser] | None = None,
        redirect_uris: list[str] | None = None,
    ) -> None:
        super().__init__(cert_dir=cert_dir, host=host, port=port)
        self.app_id, self.app_slug = str(app_id), app_slug
        self.client_id, self.client_secret = client_id, client_secret
        self._private_key = load_or_generate_key(private_key)
        self._lock = threading.RLock()
        self._initial_users = copy.deepcopy(list(users or []))
        self._initial_redirect_uris = list(redirect_uris) if redirect_uris is not None else None
        self.reset()

    def reset(self) -> None:
        """Back to construction: its users and App key, no repository, token, fault or record.

        A server shared by many tests resets before each, so that none sees what an earlier one changed.
        """
        super().reset()
        with self._lock:
            self.users = {user.login.lower(): copy.deepcopy(user) for user in self._initial_users}
            self.redirect_uris = copy.copy(self._initial_redirect_uris)  # registered callback URLs; None: any
            self._repos = {}
            self._next_id = 0
            self._installations = {}
            self.installation_permissions = {"contents": "write", "metadata": "read"}
            self.clock_offset = 0.0  # seconds added to the server's clock: ages codes, tokens and JWTs

            # Faults and limits (``unreachable``, from LocalServer, closes every connection unanswered).
            self.faults = []
            self.rate_limits = RateLimits()

            # What it handed out and saw.
            self._codes = {}
            self._user_tokens = {}
            self._installation_tokens = {}
            self.revoked_tokens = []  # user tokens revoked through DELETE /applications/{client_id}/token
            self.token_requests = []
            self.request_log: list[LoggedRequest] = []
            self._request_ids = itertools.count(1)

    # clock and identity

    def clock(self) -> float:
        return time.time() + self.clock_offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(int(self.clock()), tz=UTC)

    def bot_identity(self) -> tuple[str, str]:
        """Who the App's commits are by, as GitHub names an App's bot user."""
        return f"{self.app_slug}[bot]", f"{100000 + int(self.app_id)}+{self.app_slug}[bot]@users.noreply.github.com"

    # limits and records, for tests

    def set_rate_limit(self, limit: int, *, token: str | None = None) -> None:
        """The primary budget per hour of ``token`` (None: of every credential without its own)."""
        with self._lock:
            self.rate_limits.set(limit, token)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests matched ``method`` and the glob ``path`` (``*`` spans slashes)."""
        with self._lock:
            return sum(
                1
                for r in self.request_log
                if (method is None or r.method == method) and (path is None or fnmatch.fnmatchcase(r.path, path))
            )

    def write_count(self) -> int:
        """Content-creating requests (writes under ``/repos/``): what GitHub's write limits count."""
        with self._lock:
            return sum(1 for r in self.request_log if r.method in WRITE_METHODS and r.path.startswith("/repos/"))

    # requests

    def _handle(self, method: str, target: str, headers: HTTPMessage, body: bytes) -> Response:
        parts = urlsplit(target)
        request = Request(
            method=method,
            path=unquote(parts.path),
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=headers,
            body=body,
            auth=Auth.parse(headers.get("Authorization")),
        )
        with self._lock:
            self.request_log.append(LoggedRequest(method, request.path, request.auth.kind))
            request_id = f"LOCAL:{next(self._request_ids):06X}:{int(self.clock()):X}"
        budget_key = {"jwt": "app", "none": "anonymous"}.get(request.auth.kind, request.auth.credential)
        try:
            error = self._injected_error(method, request.path, now=self.clock(), request_id=request_id)
            if error is not None:
                raise error
            if request.path not in BROWSER_PATHS:
                version = headers.get("X-GitHub-Api-Version")
                if version not in API_VERSIONS:
                    raise ApiError(400, f"API version {version} is not supported." if version else
                                   "X-GitHub-Api-Version header is required.")  # fmt: skip
            with self._lock:
                charged = self.rate_limits.budget(budget_key).charge(self.clock())
            if not charged:
                raise ApiError(403, "API rate limit exceeded.")
            response = self._route(request)
        except ApiError as exc:
            response = json_response(exc.status, exc.body(), headers=exc.headers)
        with self._lock:
            limits = self.rate_limits.budget(budget_key).headers()
        for name, value in {
            "x-github-request-id": request_id,
            "X-GitHub-Api-Version-Selected": "2022-11-28",
            "X-GitHub-Media-Type": "github.v3; format=json",
            **limits,
        }.items():
            response.headers.setdefault(name, value)
        return response

    def _route(self, request: Request) -> Response:
        for method, pattern, name in ROUTES:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                handler: Callable[..., Response] = getattr(self, name)
                return handler(request, **match.groupdict())
        raise ApiError(404)
