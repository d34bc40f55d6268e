"""Repositories: their state (branches, objects, settings) and the test API that arranges and reads them.

Names are case-insensitive, as on GitHub. A repository is empty until its first
commit: then every Git Data endpoint answers 409.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from devtools.local_github.objects import EMPTY_TREE, Commit, ObjectStore, Signature, split_path
from integrations.github.gitobjects import FILE_MODE

ANOTHER_USER = ("Another Developer", "another.developer@example.com")


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    default_branch: str = "main"
    archived: bool = False
    installed: bool = True  # the App's installation on the owner includes this repository
    branches: dict[str, str] = field(default_factory=dict)  # branch -> commit sha
    objects: ObjectStore = field(default_factory=ObjectStore)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def empty(self) -> bool:
        return not self.branches

    def tree_of(self, branch: str) -> str | None:
        head = self.branches.get(branch)
        return self.objects.commits[head].tree if head else None


class Repositories:
    """The repositories half of LocalGitHub's test API (``server.LocalGitHub`` holds the state)."""

    _lock: threading.RLock
    _repos: dict[tuple[str, str], Repo]
    _next_id: int

    def create_repo(
        self,
        owner: str,
        name: str,
        *,
        files: dict[str, bytes] | None = None,
        empty: bool = False,
        default_branch: str = "main",
        installed: bool = True,
        archived: bool = False,
        message: str = "Initial commit",
    ) -> Repo:
        """A repository whose default branch holds ``files`` in one commit (a README without), or none when ``empty``."""
        with self._lock:
            key = (owner.lower(), name.lower())
            if key in self._repos:
                raise ValueError(f"{owner}/{name} exists already")
            self._next_id += 1
            repo = Repo(self._next_id, owner, name, default_branch, archived, installed)
            self._repos[key] = repo
            if not empty:
                self._commit_files(repo, default_branch, files or {"README.md": f"# {name}\n".encode()}, message)
            return repo

    def repo(self, owner: str, name: str) -> Repo:
        """The repository itself, to change its settings (``archived``, ``installed``, ``default_branch``)."""
        found = self.find_repo(owner, name)
        if found is None:
            raise LookupError(f"no repository {owner}/{name}")
        return found

    def find_repo(self, owner: str, name: str) -> Repo | None:
        with self._lock:
            return self._repos.get((owner.lower(), name.lower()))

    def head(self, owner: str, name: str, branch: str | None = None) -> str | None:
        """The commit ``branch`` (default: the default branch) points at; None without one."""
        repo = self.repo(owner, name)
        with self._lock:
            return repo.branches.get(branch or repo.default_branch)

    def files(self, owner: str, name: str, branch: str | None = None) -> dict[str, bytes]:
        """``{path: content}`` of every file on ``branch``: ``{}`` when it does not exist."""
        repo = self.repo(owner, name)
        with self._lock:
            tree = repo.tree_of(branch or repo.default_branch)
            return repo.objects.files(tree) if tree else {}

    def commits(self, owner: str, name: str, branch: str | None = None) -> list[Commit]:
        """The branch's history along first parents, newest first."""
        repo = self.repo(owner, name)
        with self._lock:
            history, sha = [], repo.branches.get(branch or repo.default_branch)
            while sha:
                commit = repo.objects.commits[sha]
                history.append(commit)
                sha = commit.parents[0] if commit.parents else None
            return history

    def tree_sha_at(self, owner: str, name: str, branch: str | None = None, folder: str = "") -> str | None:
        """The id of the tree at ``folder`` (``""``: the root) on ``branch``; None when there is none."""
        repo = self.repo(owner, name)
        with self._lock:
            tree = repo.tree_of(branch or repo.default_branch)
            found = repo.objects.lookup(tree, folder) if tree else None
            return found[1] if found and found[1] in repo.objects.trees else None

    def push(
        self,
        owner: str,
        name: str,
        branch: str | None = None,
        files_changed: dict[str, bytes | None] | None = None,
        *,
        message: str = "A push by another developer",
    ) -> str:
        """Another developer's commit on ``branch`` changing ``files_changed`` (None deletes); returns its id.

        A branch that does not exist yet starts from the default branch's head.
        """
        repo = self.repo(owner, name)
        with self._lock:
            branch = branch or repo.default_branch
            if files_changed is None:
                files_changed = {f"pushed-{len(repo.objects.commits) + 1}.txt": b"pushed meanwhile\n"}
            return self._commit_files(repo, branch, files_changed, message, author=ANOTHER_USER)

    def _commit_files(
        self,
        repo: Repo,
        branch: str,
        changes: dict[str, bytes | None],
        message: str,
        *,
        author: tuple[str, str] | None = None,
    ) -> str:
        """Commit ``changes`` on top of ``branch`` (or the default branch's head) and move the branch."""
        parent = repo.branches.get(branch) or repo.branches.get(repo.default_branch)
        tree = repo.objects.commits[parent].tree if parent else None
        for path, content in changes.items():
            value = None if content is None else (FILE_MODE, repo.objects.put_blob(content))
            tree = repo.objects.graft(tree, split_path(path), value)
        signature = Signature(*(author or self.bot_identity()), self.now())
        commit = repo.objects.put_commit(
            tree=tree or EMPTY_TREE,
            parents=[parent] if parent else [],
            author=signature,
            committer=signature,
            message=message,
        )
        if repo.empty:
            repo.default_branch = branch  # the first branch of a repository becomes its default, as on GitHub
        repo.branches[branch] = commit.sha
        return commit.sha
