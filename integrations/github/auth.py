"""Authenticating as the GitHub App: its JWT, and installation tokens scoped to one repository.

The JWT (RS256, ``iat`` backdated 60 s for clock drift, ``exp`` 9 minutes ahead: GitHub
allows at most 10) is exchanged for an installation token limited to the one
repository with ``contents: write``. Tokens are cached in memory until five minutes
before they expire and dropped on a 401; they are never stored.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

import jwt
from django.core.signals import setting_changed
from django.dispatch import receiver

from integrations.github.client import GitHubClient, GitHubError
from integrations.github.conf import GitHubConfig, load_private_key

JWT_BACKDATE_S = 60
JWT_LIFETIME_S = 540
TOKEN_RENEW_BEFORE_S = 300

_tokens: dict[tuple[str, str, str], tuple[str, float]] = {}  # (api, owner, name) -> (token, expires at)
_lock = threading.Lock()


def app_jwt(config: GitHubConfig, *, now: float | None = None) -> str:
    now = int(time.time() if now is None else now)
    claims = {"iat": now - JWT_BACKDATE_S, "exp": now + JWT_LIFETIME_S, "iss": config.app_id}
    return jwt.encode(claims, _private_key(config.private_key_file), algorithm="RS256")


_keys: dict[str, object] = {}


def _private_key(path: str):
    if path not in _keys:
        _keys[path] = load_private_key(path)
    return _keys[path]


def installation_token(client: GitHubClient, owner: str, name: str, *, refresh: bool = False) -> str:
    """A token of the App's installation on ``owner/name``, for that repository only, contents: write."""
    key = (client.config.api_url, owner.lower(), name.lower())
    with _lock:
        cached = _tokens.get(key)
    if cached and not refresh and cached[1] - TOKEN_RENEW_BEFORE_S > time.time():
        return cached[0]
    bearer = app_jwt(client.config)
    try:
        installation = client.request("GET", f"/repos/{owner}/{name}/installation", token=bearer, scheme="Bearer")
    except GitHubError as exc:
        if exc.status != 404:
            raise
        raise GitHubError(
            f"The GitHub App is not installed on {owner}/{name} (or the repository does not exist): install the App "
            "on the repository or fix the mapping",
            reason="not_installed",
            retryable=False,
            status=404,
            request_id=exc.request_id,
        ) from None
    answer = client.request(
        "POST",
        f"/app/installations/{installation['id']}/access_tokens",
        token=bearer,
        scheme="Bearer",
        json={"repositories": [name], "permissions": {"contents": "write"}},
        expect=(201,),
    )
    try:
        expires = datetime.fromisoformat(answer["expires_at"].replace("Z", "+00:00")).timestamp()
        token = answer["token"]
    except (KeyError, TypeError, ValueError) as exc:
        raise GitHubError("GitHub's installation token answer is malformed", reason="bad_response",
                          retryable=True) from exc  # fmt: skip
    with _lock:
        _tokens[key] = (token, expires)
    return token


def forget_tokens() -> None:
    with _lock:
        _tokens.clear()
    _keys.clear()


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs) -> None:
    if setting.startswith("GITHUB_"):
        forget_tokens()
