"""The repository endpoints: the repository itself, the Git Data API (refs, commits, trees, blobs) and Contents.

Each answers as the installation token allows (``app_auth``); an archived
repository refuses writes with 403 and an empty one answers 409 on every Git
Data endpoint, as GitHub does. Refs move fast-forward only unless ``force``.
"""

from __future__ import annotations

import base64
import binascii
import threading
from typing import Any

from devtools.local_github.objects import BLOB_MODES, BadObject, Commit, Signature, split_path
from devtools.local_github.repos import Repo
from devtools.local_github.request import ApiError, Request
from devtools.local_server import Response, json_response
from integrations.github.gitobjects import FILE_MODE, TREE_MODE

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
ARCHIVED = "Repository was archived so is read-only."


def _b64(content: bytes) -> str:
    encoded = base64.b64encode(content).decode()
    return "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))  # GitHub wraps at 60


def _b64decode(value: Any) -> bytes:
    try:
        return base64.b64decode("".join(str(value).split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(422, "content is not valid Base64") from exc


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


class GitData:
    """The repository endpoints of LocalGitHub (``server.LocalGitHub`` holds the state)."""

    _lock: threading.RLock
    url: str

    def _repo(self, request: Request, owner: str, name: str, *, git_data: bool = True) -> Repo:
        repo = self.find_repo(owner, name)
        if repo is None:
            raise ApiError(404)
        write = request.method in WRITE_METHODS
        self._authorize_installation(request, repo, write=write)
        if write and repo.archived:
            raise ApiError(403, ARCHIVED)
        if git_data and repo.empty:
            raise ApiError(409, "Git Repository is empty.")
        return repo

    def _api(self, repo: Repo) -> str:
        return f"{self.url}/repos/{repo.full_name}"

    # the repository

    def _get_repo(self, request: Request, owner: str, name: str) -> Response:
        with self._lock:
            repo = self._repo(request, owner, name, git_data=False)
            return json_response(200, {
                "id": repo.id, "node_id": f"R_local{repo.id}", "name": repo.name, "full_name": repo.full_name,
                "owner": {"login": repo.owner, "type": "Organization"}, "private": True, "visibility": "private",
                "html_url": f"{self.url}/{repo.full_name}", "url": self._api(repo),
                "default_branch": repo.default_branch, "archived": repo.archived, "disabled": False,
                "size": 0 if repo.empty else len(repo.objects.blobs),
            })  # fmt: skip

    # refs

    def _ref_json(self, repo: Repo, branch: str) -> dict[str, Any]:
        sha = repo.branches[branch]
        return {
            "ref": f"refs/heads/{branch}",
            "node_id": f"REF_local{repo.id}_{branch}",
            "url": f"{self._api(repo)}/git/refs/heads/{branch}",
            "object": {"sha": sha, "type": "commit", "url": f"{self._api(repo)}/git/commits/{sha}"},
        }

    def _get_ref(self, request: Request, owner: str, name: str, branch: str) -> Response:
        with self._lock:
            repo = self._repo(request, owner, name)
            if branch not in repo.branches:
                raise ApiError(404)
            return json_response(200, self._ref_json(repo, branch))

    def _create_ref(self, request: Request, owner: str, name: str) -> Response:
        body = request.json()
        ref, sha = body.get("ref"), body.get("sha")
        with self._lock:
            repo = self._repo(request, owner, name)
            if not isinstance(ref, str) or not ref.startswith("refs/heads/") or len(ref) == len("refs/heads/"):
                raise ApiError(422, "Reference name must start with 'refs/' and have at least two slashes.")
            branch = ref.removeprefix("refs/heads/")
            if not isinstance(sha, str) or sha not in repo.objects.commits:
                raise ApiError(422, "Object does not exist")
            if branch in repo.branches:
                raise ApiError(422, "Reference already exists")
            repo.branches[branch] = sha
            return json_response(201, self._ref_json(repo, branch))

    def _update_ref(self, request: Request, owner: str, name: str, branch: str) -> Response:
        body = request.json()
        sha, force = body.get("sha"), bool(body.get("force", False))
        with self._lock:
            repo = self._repo(request, owner, name)
            if branch not in repo.branches:
                raise ApiError(422, "Reference does not exist")
            fault = self._take_fault(("concurrent_push",), request.method, request.path)
            if fault is not None:
                self.push(repo.owner, repo.name, branch, fault.files)
            if not isinstance(sha, str) or sha not in repo.objects.commits:
                raise ApiError(422, "Object does not exist")
            if not force and not repo.objects.descends(sha, repo.branches[branch]):
                raise ApiError(422, "Update is not a fast forward")
            repo.branches[branch] = sha
            return json_response(200, self._ref_json(repo, branch))

    # commits

    def _commit_json(self, repo: Repo, commit: Commit) -> dict[str, Any]:
        api = self._api(repo)
        return {
            "sha": commit.sha,
            "node_id": f"C_local{commit.sha[:12]}",
            "url": f"{api}/git/commits/{commit.sha}",
            "html_url": f"{self.url}/{repo.full_name}/commit/{commit.sha}",
            "author": commit.author.as_json(),
            "committer": commit.committer.as_json(),
            "tree": {"sha": commit.tree, "url": f"{api}/git/trees/{commit.tree}"},
            "message": commit.message,
            "parents": [{"sha": p, "url": f"{api}/git/commits/{p}"} for p in commit.parents],
            "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None},
        }

    def _get_commit(self, request: Request, owner: str, name: str, sha: str) -> Response:
        with self._lock:
            repo = self._repo(request, owner, name)
            if sha not in repo.objects.commits:
                raise ApiError(404)
            return json_response(200, self._commit_json(repo, repo.objects.commits[sha]))

    def _signatures(self, body: dict[str, Any]) -> tuple[Signature, Signature]:
        bot = Signature(*self.bot_identity(), self.now())
        author = Signature.parse(body["author"], default=bot) if body.get("author") else bot
        committer = Signature.parse(body["committer"], default=author) if body.get("committer") else author
        return author, committer

    def _create_commit(self, request: Request, owner: str, name: str) -> Response:
        body = request.json()
        message, tree, parents = body.get("message"), body.get("tree"), body.get("parents", [])
        if not isinstance(message, str) or not isinstance(tree, str) or not _strings(parents):
            raise ApiError(422, "Invalid request.\n\nmessage and tree are required; parents is a list")
        with self._lock:
            repo = self._repo(request, owner, name)
            try:
                author, committer = self._signatures(body)
                commit = repo.objects.put_commit(
                    tree=tree, parents=parents, author=author, committer=committer, message=message
                )
            except BadObject as exc:
                raise ApiError(422, str(exc)) from exc
            return json_response(201, self._commit_json(repo, commit))

    # trees

    def _tree_json(self, repo: Repo, sha: str, *, recursive: bool = False) -> dict[str, Any]:
        api, objects = self._api(repo), repo.objects
        entries = []
        for path, mode, entry_sha in objects.walk(sha, recursive=recursive):
            is_tree = mode == TREE_MODE
            entry = {"path": path, "mode": "0" + mode if is_tree else mode, "type": "tree" if is_tree else "blob"}
            entry["sha"] = entry_sha
            if not is_tree:
                entry["size"] = len(objects.blobs[entry_sha])
            entry["url"] = f"{api}/git/{'trees' if is_tree else 'blobs'}/{entry_sha}"
            entries.append(entry)
        return {"sha": sha, "url": f"{api}/git/trees/{sha}", "tree": entries, "truncated": False}

    def _get_tree(self, request: Request, owner: str, name: str, sha: str) -> Response:
        with self._lock:
            repo = self._repo(request, owner, name)
            if sha in repo.branches:  # GitHub takes a branch or a commit for the tree too
                sha = repo.branches[sha]
            if sha in repo.objects.commits:
                sha = repo.objects.commits[sha].tree
            if sha not in repo.objects.trees:
                raise ApiError(404)
            # GitHub: "setting this parameter to any value returns the objects or subtrees".
            return json_response(200, self._tree_json(repo, sha, recursive="recursive" in request.query))

    def _create_tree(self, request: Request, owner: str, name: str) -> Response:
        body = request.json()
        entries, base = body.get("tree"), body.get("base_tree")
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ApiError(422, "Invalid request.\n\ntree must be a list of entries")
        with self._lock:
            repo = self._repo(request, owner, name)
            if base is not None and (not isinstance(base, str) or base not in repo.objects.trees):
                raise ApiError(422, "base_tree is not a valid tree")
            try:
                root = base
                for entry in entries:
                    root = repo.objects.graft(root, split_path(entry.get("path")), self._tree_entry(repo, entry))
            except BadObject as exc:
                raise ApiError(422, str(exc)) from exc
            return json_response(201, self._tree_json(repo, root or repo.objects.put_tree({})))

    def _tree_entry(self, repo: Repo, entry: dict[str, Any]) -> tuple[str, str] | None:
        """``(mode as git hashes it, sha)`` of one entry of ``POST /git/trees``; None deletes the path."""
        mode, kind = str(entry.get("mode", "")), entry.get("type")
        git_mode = TREE_MODE if mode in ("040000", TREE_MODE) else mode
        if git_mode not in (*BLOB_MODES, TREE_MODE) or kind != ("tree" if git_mode == TREE_MODE else "blob"):
            raise BadObject(f"tree.mode {mode!r} and tree.type {kind!r} do not make an entry")
        if "content" in entry:
            if "sha" in entry or kind != "blob" or not isinstance(entry["content"], str):
                raise BadObject("tree.content is a blob's text, without tree.sha")
            return git_mode, repo.objects.put_blob(entry["content"].encode())
        if "sha" not in entry:
            raise BadObject("Must supply either tree.sha or tree.content")
        sha = entry["sha"]
        if sha is None:
            return None
        if not isinstance(sha, str) or sha not in (repo.objects.trees if kind == "tree" else repo.objects.blobs):
            raise BadObject(f"tree.sha {sha} is not a valid {kind}")
        return git_mode, sha

    # blobs

    def _create_blob(self, request: Request, owner: str, name: str) -> Response:
        body = request.json()
        content, encoding = body.get("content"), body.get("encoding", "utf-8")
        if not isinstance(content, str):
            raise ApiError(422, 'Invalid request.\n\n"content" wasn\'t supplied.')
        if encoding not in ("utf-8", "base64"):
            raise ApiError(422, "encoding must be utf-8 or base64")
        with self._lock:
            repo = self._repo(request, owner, name)
            sha = repo.objects.put_blob(_b64decode(content) if encoding == "base64" else content.encode())
            return json_response(201, {"sha": sha, "url": f"{self._api(repo)}/git/blobs/{sha}"})

    def _get_blob(self, request: Request, owner: str, name: str, sha: str) -> Response:
        with self._lock:
            repo = self._repo(request, owner, name)
            if sha not in repo.objects.blobs:
                raise ApiError(404)
            content = repo.objects.blobs[sha]
            return json_response(200, {"sha": sha, "size": len(content), "content": _b64(content),
                                       "encoding": "base64", "url": f"{self._api(repo)}/git/blobs/{sha}"})  # fmt: skip

    # contents

    def _put_contents(self, request: Request, owner: str, name: str, path: str) -> Response:
        """Create or update one file in one commit; in an empty repository, the first commit."""
        body = request.json()
        message, content = body.get("message"), body.get("content")
        if not isinstance(message, str) or not isinstance(content, str):
            raise ApiError(422, 'Invalid request.\n\n"message" and "content" are required.')
        data = _b64decode(content)
        with self._lock:
            repo = self._repo(request, owner, name, git_data=False)
            try:
                parts = split_path(path)
            except BadObject as exc:
                raise ApiError(422, str(exc)) from exc
            branch = body.get("branch") or repo.default_branch
            head = repo.branches.get(branch)
            if head is None and not repo.empty:
                raise ApiError(404, f"Branch {branch} not found")
            tree = repo.objects.commits[head].tree if head else None
            existing = repo.objects.lookup(tree, path) if tree else None
            if existing is not None and existing[0] == TREE_MODE:
                raise ApiError(422, f"{path} is a directory")
            if existing is not None and body.get("sha") != existing[1]:
                if body.get("sha") is None:
                    raise ApiError(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
                raise ApiError(409, f"{path} does not match {body['sha']}")
            blob = repo.objects.put_blob(data)
            try:
                root = repo.objects.graft(tree, parts, (FILE_MODE, blob))
                author, committer = self._signatures(body)
            except BadObject as exc:
                raise ApiError(422, str(exc)) from exc
            commit = repo.objects.put_commit(
                tree=root, parents=[head] if head else [], author=author, committer=committer, message=message
            )
            if repo.empty:
                repo.default_branch = branch  # the first branch of a repository becomes its default, as on GitHub
            repo.branches[branch] = commit.sha
            return json_response(200 if existing else 201, {
                "content": {
                    "name": parts[-1], "path": path, "sha": blob, "size": len(data), "type": "file",
                    "url": f"{self._api(repo)}/contents/{path}?ref={branch}",
                    "git_url": f"{self._api(repo)}/git/blobs/{blob}",
                },
                "commit": self._commit_json(repo, commit),
            })  # fmt: skip
