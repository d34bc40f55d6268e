"""The GitHub App's user authorization (web flow): the authorize page, the code exchange, ``/user``, revocation.

As on GitHub, the token endpoint answers its errors with 200 and an ``error``
field, and answers form-encoded unless asked for JSON. A code is good once, for
ten minutes, for the client and redirect URI it was issued to.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from devtools.local_github.app_auth import new_token
from devtools.local_github.pages import Callback, authorize_page, error_page, press, redirect
from devtools.local_github.request import ApiError, Request
from devtools.local_server import Response, json_response

CODE_LIFETIME_S = 600
ERROR_URI = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"
TOKEN_ERRORS = {
    "bad_verification_code": "The code passed is incorrect or expired.",
    "incorrect_client_credentials": "The client_id and/or client_secret passed are incorrect.",
    "redirect_uri_mismatch": "The redirect_uri MUST match the registered callback URL for this application.",
}


@dataclass(frozen=True)
class GitHubUser:
    login: str
    id: int
    name: str
    email: str | None = None

    def as_json(self, web_url: str) -> dict[str, Any]:
        return {
            "login": self.login,
            "id": self.id,
            "node_id": f"U_local{self.id}",
            "type": "User",
            "site_admin": False,
            "name": self.name,
            "email": self.email,
            "html_url": f"{web_url}/{self.login}",
        }


@dataclass(frozen=True)
class AuthCode:
    login: str
    client_id: str
    redirect_uri: str
    expires_at: float


class OAuth:
    """The web flow's half of LocalGitHub (``server.LocalGitHub`` holds the state)."""

    _lock: threading.RLock
    _codes: dict[str, AuthCode]
    _user_tokens: dict[str, str]  # token -> login
    users: dict[str, GitHubUser]  # by lower-case login
    redirect_uris: list[str] | None
    revoked_tokens: list[str]
    client_id: str
    client_secret: str
    app_slug: str
    url: str

    # the browser, for tests

    def sign_in(self, auth_uri: str, user: GitHubUser | str, *, session: Any = None) -> Callback:
        """Act as the browser: open ``auth_uri``, authorize as ``user``, return where GitHub sends it back."""
        login = user if isinstance(user, str) else user.login
        return press(session or self.http_session(), auth_uri, login)

    def deny(self, auth_uri: str, *, session: Any = None) -> Callback:
        """Act as the browser that presses Cancel: the callback carries ``error=access_denied``."""
        return press(session or self.http_session(), auth_uri, None)

    def user_for_token(self, token: str) -> GitHubUser | None:
        with self._lock:
            login = self._user_tokens.get(token)
            return self.users.get(login) if login else None

    # endpoints

    def _authorize_target(self, params: dict[str, str]) -> tuple[str | None, Response | None]:
        """The redirect URI to send the browser back to, or the page that stops it there."""
        if params.get("client_id") != self.client_id:
            return None, error_page(404, "No GitHub App has this client_id.")
        redirect_uri = params.get("redirect_uri") or (self.redirect_uris or [""])[0]
        if not redirect_uri:
            return None, error_page(400, "redirect_uri is missing and no callback URL is registered.")
        if self.redirect_uris is not None and redirect_uri not in self.redirect_uris:
            return None, redirect(self.redirect_uris[0], {
                "error": "redirect_uri_mismatch",
                "error_description": TOKEN_ERRORS["redirect_uri_mismatch"],
                "state": params.get("state", ""),
            })  # fmt: skip
        return redirect_uri, None

    def _authorize_page(self, request: Request) -> Response:
        redirect_uri, stop = self._authorize_target(request.query)
        if stop is not None:
            return stop
        assert redirect_uri is not None
        params = {"client_id": self.client_id, "redirect_uri": redirect_uri, "state": request.query.get("state", "")}
        with self._lock:
            users = [(u.login, u.name) for u in self.users.values()]
        return authorize_page("/login/oauth/authorize", params, users, self.app_slug)

    def _authorize_submit(self, request: Request) -> Response:
        params = request.params()
        redirect_uri, stop = self._authorize_target(params)
        if stop is not None:
            return stop
        assert redirect_uri is not None
        state = {"state": params["state"]} if params.get("state") else {}
        if params.get("deny"):
            return redirect(redirect_uri, {
                "error": "access_denied",
                "error_description": "The user has denied your application access.",
                "error_uri": f"{ERROR_URI}#access-denied",
                **state,
            })  # fmt: skip
        with self._lock:
            user = self.users.get(params.get("login", "").lower())
            if user is None:
                return error_page(400, "No such test user.")
            code = secrets.token_hex(10)
            self._codes[code] = AuthCode(user.login, self.client_id, redirect_uri, self.clock() + CODE_LIFETIME_S)
        return redirect(redirect_uri, {"code": code, **state})

    def _access_token(self, request: Request) -> Response:
        params = request.params()
        with self._lock:
            if params.get("client_id") != self.client_id or params.get("client_secret") != self.client_secret:
                return self._token_answer(request, {"error": "incorrect_client_credentials"})
            grant = self._codes.pop(params.get("code", ""), None)  # once, whatever happens next
            if grant is None or grant.expires_at <= self.clock() or grant.client_id != params["client_id"]:
                return self._token_answer(request, {"error": "bad_verification_code"})
            if params.get("redirect_uri") and params["redirect_uri"] != grant.redirect_uri:
                return self._token_answer(request, {"error": "redirect_uri_mismatch"})
            token = new_token("ghu_")
            self._user_tokens[token] = grant.login
        return self._token_answer(request, {"access_token": token, "token_type": "bearer", "scope": ""})

    def _token_answer(self, request: Request, body: dict[str, str]) -> Response:
        if "error" in body:
            body = {
                **body,
                "error_description": TOKEN_ERRORS[body["error"]],
                "error_uri": f"{ERROR_URI}#{body['error']}",
            }
        if request.wants_json():
            return json_response(200, body)
        return Response(200, urlencode(body).encode(), "application/x-www-form-urlencoded; charset=utf-8")

    def _get_user(self, request: Request) -> Response:
        if request.auth.kind == "installation":
            raise ApiError(403, "Resource not accessible by integration")
        user = self.user_for_token(request.auth.credential) if request.auth.kind == "user" else None
        if user is None:
            raise ApiError(401, "Requires authentication" if request.auth.kind == "none" else "Bad credentials")
        return json_response(200, user.as_json(self.url))

    def _revoke_user_token(self, request: Request, client_id: str) -> Response:
        auth = request.auth
        if auth.kind != "basic" or (auth.credential, auth.password) != (self.client_id, self.client_secret):
            raise ApiError(401, "Bad credentials")
        if client_id != self.client_id:
            raise ApiError(404)
        token = request.json().get("access_token")
        with self._lock:
            if not isinstance(token, str) or self._user_tokens.pop(token, None) is None:
                raise ApiError(404)
            self.revoked_tokens.append(token)
        return Response(204)
