"""A local GitHub shared by the session, reset before each test, and a client that speaks to it as the project's does."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from devtools.local_github import GitHubUser, LocalGitHub
from integrations.github.conf import API_VERSION

OCTOCAT = GitHubUser("octocat", 583231, "The Octocat", "octocat@example.com")
HUBOT = GitHubUser("hubot", 480938, "Hubot")
CALLBACK = "http://testserver/account/github/callback/"  # the project's redirect_uri


class Api:
    """Requests as ``GitHubClient`` sends them: the API version header and a credential."""

    def __init__(self, github: LocalGitHub) -> None:
        self.github = github
        self.session = github.http_session()

    def __call__(
        self, method: str, path: str, *, token: str | None = None, scheme: str = "token", version: bool = True,
        **kwargs: Any,
    ) -> requests.Response:  # fmt: skip
        headers = {"Accept": "application/vnd.github+json", **kwargs.pop("headers", {})}
        if version:
            headers["X-GitHub-Api-Version"] = API_VERSION
        if token:
            headers["Authorization"] = f"{scheme} {token}"
        return self.session.request(method, f"{self.github.url}{path}", headers=headers, **kwargs)

    def token(self, owner: str, name: str, **body: Any) -> str:
        """An installation token for ``owner/name`` alone, contents: write, as ``integrations.github.auth`` asks."""
        jwt = self.github.app_jwt()
        installation = self("GET", f"/repos/{owner}/{name}/installation", token=jwt, scheme="Bearer")
        assert installation.status_code == 200, installation.text
        body = {"repositories": [name], "permissions": {"contents": "write"}, **body}
        answer = self("POST", f"/app/installations/{installation.json()['id']}/access_tokens", token=jwt,
                      scheme="Bearer", json=body)  # fmt: skip
        assert answer.status_code == 201, answer.text
        return answer.json()["token"]


@pytest.fixture(scope="session")
def github_server():
    server = LocalGitHub(users=[OCTOCAT, HUBOT], redirect_uris=[CALLBACK]).start()
    yield server
    server.stop()


@pytest.fixture
def github(github_server: LocalGitHub) -> LocalGitHub:
    github_server.reset()
    return github_server


@pytest.fixture
def api(github: LocalGitHub) -> Api:
    return Api(github)
