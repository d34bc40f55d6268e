"""Connecting a user's GitHub account: the GitHub App's user authorization (web flow).

The callback reads ``/user`` once, keeps the username and a keyed hash of the
token (never the token), then revokes the token: the platform keeps no user token.
Syncs authenticate as the App's installation, not as the user.
"""

from __future__ import annotations

import logging
import secrets
import time
from urllib.parse import urlencode

from django.utils import timezone

from core.crypto import hash_token
from integrations.github.client import GitHubClient, GitHubError
from integrations.github.conf import github_config

logger = logging.getLogger("integrations.github.connect")

STATE_KEY = "github_connect_state"
STATE_TTL_S = 600


class ConnectError(Exception):
    """The connection cannot complete; ``message`` is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def start(*, session, redirect_uri: str) -> str:
    """The URL that sends the browser to GitHub; the state is one use and tied to this session."""
    config = github_config()
    state = secrets.token_urlsafe(32)
    session[STATE_KEY] = {"state": state, "at": time.time(), "redirect_uri": redirect_uri}
    query = {"client_id": config.client_id, "redirect_uri": redirect_uri, "state": state}
    return f"{config.web_url}/login/oauth/authorize?{urlencode(query)}"


def complete(*, session, user, params: dict) -> str:
    """Finish the flow the callback belongs to; returns the GitHub username now connected."""
    pending = session.pop(STATE_KEY, None)  # used once, whatever happens next
    state = params.get("state", "")
    if not pending or not state or not secrets.compare_digest(pending["state"], state):
        raise ConnectError("This GitHub link was already used, has expired or is not yours. Connect again.")
    if time.time() - pending["at"] > STATE_TTL_S:
        raise ConnectError("This GitHub link has expired. Connect again.")
    if params.get("error"):
        raise ConnectError(f"GitHub did not connect your account: {params.get('error_description') or params['error']}")
    code = params.get("code", "")
    if not code:
        raise ConnectError("GitHub sent no authorization code. Connect again.")
    config = github_config()
    client = GitHubClient(config=config)
    try:
        answer = client.request(
            "POST",
            f"{config.web_url}/login/oauth/access_token",
            token="",
            accept="application/json",
            data={
                "client_id": config.client_id,
                "client_secret": config.client_secret,
                "code": code,
                "redirect_uri": pending["redirect_uri"],
            },
        )
    except GitHubError as exc:
        logger.warning("GitHub token exchange failed: %s", exc.reason)
        raise ConnectError("GitHub could not be reached to finish connecting. Try again in a minute.") from exc
    token = (answer or {}).get("access_token")
    if not token:
        logger.warning("GitHub refused the code: %s", (answer or {}).get("error"))
        raise ConnectError("GitHub did not accept this authorization. Connect again.")
    try:
        login = client.request("GET", "/user", token=token, scheme="Bearer")["login"]
    except (GitHubError, KeyError, TypeError) as exc:
        raise ConnectError("GitHub did not say who you are. Connect again.") from exc
    finally:
        revoke(client, token)
    user.github_username = login
    user.github_access_token_hash = hash_token(token)
    user.github_connected_at = timezone.now()
    user.save(update_fields=["github_username", "github_access_token_hash", "github_connected_at", "updated_at"])
    return login


def revoke(client: GitHubClient, token: str) -> None:
    """Revoke a user token: the platform keeps none (a failure is logged; the token expires on its own)."""
    config = client.config
    try:
        client.request(
            "DELETE",
            f"/applications/{config.client_id}/token",
            token="",
            basic=(config.client_id, config.client_secret),
            json={"access_token": token},
            expect=(204,),
        )
    except GitHubError as exc:
        logger.warning("revoking the GitHub user token failed: %s", exc.reason)


def disconnect(*, user) -> None:
    user.github_username = None
    user.github_access_token_hash = None
    user.github_connected_at = None
    user.save(update_fields=["github_username", "github_access_token_hash", "github_connected_at", "updated_at"])
