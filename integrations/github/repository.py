"""The Git Data API calls a sync makes on one repository, as the App's installation.

Five endpoints (refs, commits, trees, blobs) plus the Contents API for the first
commit of an empty repository. A 401 refreshes the installation token once.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

from integrations.github.auth import installation_token
from integrations.github.client import GitHubClient, GitHubError


class Repository:
    def __init__(self, client: GitHubClient, owner: str, name: str) -> None:
        self.client, self.owner, self.name = client, owner, name
        self._token: str | None = None

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._token is None:
            self._token = installation_token(self.client, self.owner, self.name)
        url = f"/repos/{self.owner}/{self.name}{path}"
        try:
            return self.client.request(method, url, token=self._token, **kwargs)
        except GitHubError as exc:
            if exc.status != 401:
                raise
        # Revoked or expired early: one new token, then a 401 is final.
        self._token = installation_token(self.client, self.owner, self.name, refresh=True)
        return self.client.request(method, url, token=self._token, **kwargs)

    # reads

    def default_branch(self) -> str:
        return self.call("GET", "")["default_branch"]

    def head(self, branch: str) -> str | None:
        """The commit the branch points at; None when there is no such branch."""
        try:
            return self.call("GET", f"/git/ref/heads/{quote(branch, safe='/')}")["object"]["sha"]
        except GitHubError as exc:
            if exc.status == 404 and exc.reason == "not_found":
                return None
            raise

    def commit_tree(self, commit_sha: str) -> str:
        return self.call("GET", f"/git/commits/{commit_sha}")["tree"]["sha"]

    def subtree(self, tree_sha: str, path: str) -> str | None:
        """The id of the tree at ``path`` (``a/b``) under ``tree_sha``; None when it is missing or not a tree."""
        current = tree_sha
        for part in [p for p in path.split("/") if p]:
            entries = self.call("GET", f"/git/trees/{current}")["tree"]
            match = next((e for e in entries if e["path"] == part), None)
            if match is None or match["type"] != "tree":
                return None
            current = match["sha"]
        return current

    # writes

    def create_blob(self, content: bytes) -> str:
        answer = self.call(
            "POST", "/git/blobs", json={"content": base64.b64encode(content).decode(), "encoding": "base64"}
        )
        return answer["sha"]

    def create_tree(self, entries: list[dict], *, base_tree: str | None = None) -> str:
        body: dict[str, Any] = {"tree": entries}
        if base_tree:
            body["base_tree"] = base_tree
        return self.call("POST", "/git/trees", json=body)["sha"]

    def create_commit(self, *, message: str, tree: str, parents: list[str]) -> str:
        return self.call("POST", "/git/commits", json={"message": message, "tree": tree, "parents": parents})["sha"]

    def create_branch(self, branch: str, sha: str) -> None:
        self.call("POST", "/git/refs", json={"ref": f"refs/heads/{branch}", "sha": sha}, expect=(201,))

    def update_branch(self, branch: str, sha: str) -> None:
        """Fast-forward only: raises ``NotFastForward`` when the branch moved."""
        self.call("PATCH", f"/git/refs/heads/{quote(branch, safe='/')}", json={"sha": sha, "force": False})

    def put_file(self, *, path: str, content: bytes, message: str, branch: str | None) -> str:
        """The Contents API (the only way into an empty repository); returns the new commit's id."""
        body: dict[str, Any] = {"message": message, "content": base64.b64encode(content).decode()}
        if branch:
            body["branch"] = branch
        answer = self.call("PUT", f"/contents/{quote(path, safe='/')}", json=body, expect=(200, 201))
        return answer["commit"]["sha"]
