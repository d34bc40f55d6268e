"""Syncing a project's generated files to its repository folder as one commit.

The folder mirrors the project: its tree is built from the project's files alone
(anything else in the folder goes) and grafted onto the branch head's tree, so
nothing outside the folder changes. The folder's tree id is computed locally
first: equal to the head's, nothing is written. The ref moves fast-forward only;
when another push moved the branch, the commit is rebuilt on the new head.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from integrations.github.client import EmptyRepository, GitHubClient, GitHubError, NotFastForward
from integrations.github.gitobjects import TREE_MODE, folder_tree_sha
from integrations.github.repository import Repository

logger = logging.getLogger("integrations.github.sync")

INLINE_LIMIT = 512 * 1024  # larger files go as blobs
MAX_REBUILDS = 3  # a branch that keeps moving: give up (retried later) after this many rebuilds


class BadPath(ValueError):
    """A generated file's path that must never reach GitHub."""


@dataclass
class Outcome:
    status: str  # "succeeded" or "unchanged"
    base_sha: str
    tree_sha: str
    commit_sha: str
    files: int
    bytes: int


def check_path(path: str, *, what: str = "file") -> list[str]:
    """The segments of a safe relative path; raises ``BadPath`` naming it otherwise."""
    if not path or path.startswith("/") or "\\" in path or "\0" in path or (len(path) > 1 and path[1] == ":"):
        raise BadPath(f"{what} path {path!r} is not a relative path")
    segments = path.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise BadPath(f"{what} path {path!r} has an empty, '.' or '..' segment")
        if segment.lower() == ".git":
            raise BadPath(f"{what} path {path!r} would write into .git")
    return segments


def normalize_folder(folder: str) -> str:
    folder = folder.strip().strip("/")
    if folder:
        check_path(folder, what="folder")
    return folder


def plan_files(files: list[tuple[str, str]]) -> dict[str, bytes]:
    """``{relative path: bytes}`` of the project's files, every path checked first."""
    planned: dict[str, bytes] = {}
    for path, content in files:
        check_path(path)
        planned[path] = content.encode("utf-8")
    # A file and a folder of the same name cannot both exist in a tree.
    prefixes = {"/".join(p.split("/")[:i]) for p in planned for i in range(1, p.count("/") + 1)}
    clash = sorted(prefixes & planned.keys())
    if clash:
        raise BadPath(f"file path {clash[0]!r} is also a folder of other files")
    return planned


def sync_folder(
    *,
    client: GitHubClient,
    owner: str,
    name: str,
    branch: str,
    folder: str,
    files: dict[str, bytes],
    message: str,
    reserve: Callable[[int], None] | None = None,
) -> Outcome:
    """Make ``folder`` on ``branch`` hold exactly ``files``, in one commit (or none when it already does).

    ``reserve(n)`` is called with the writes the commit needs before the first of them is sent.
    """
    repo = Repository(client, owner, name)
    folder = normalize_folder(folder)
    want = folder_tree_sha(files)
    total = sum(len(c) for c in files.values())

    try:
        head = repo.head(branch)
    except EmptyRepository:
        head = _first_commit(repo, branch=branch, folder=folder, files=files, message=message)
    new_branch = head is None
    if new_branch:
        head = repo.head(repo.default_branch())
        if head is None:
            raise GitHubError("the repository's default branch has no commit", reason="validation", retryable=False)
    head_tree = repo.commit_tree(head)
    current = repo.subtree(head_tree, folder) if folder else head_tree
    if current == want:
        if new_branch:
            repo.create_branch(branch, head)
            return Outcome("succeeded", head, want, head, len(files), total)
        return Outcome("unchanged", head, want, head, len(files), total)

    if reserve is not None:
        blobs = sum(1 for content in files.values() if _needs_blob(content))
        reserve(blobs + 1 + (1 if folder else 0) + 1 + 1)  # blobs, folder tree, root tree, commit, ref
    subtree = repo.create_tree(_entries(repo, files))
    if subtree != want:
        logger.warning("GitHub's tree %s for %s/%s differs from the local %s", subtree, owner, name, want)
    for _ in range(MAX_REBUILDS + 1):
        root = (
            repo.create_tree(
                [{"path": folder, "mode": "0" + TREE_MODE, "type": "tree", "sha": subtree}], base_tree=head_tree
            )
            if folder
            else subtree
        )
        commit = repo.create_commit(message=message, tree=root, parents=[head])
        if new_branch:
            repo.create_branch(branch, commit)
            return Outcome("succeeded", head, subtree, commit, len(files), total)
        try:
            repo.update_branch(branch, commit)
            return Outcome("succeeded", head, subtree, commit, len(files), total)
        except NotFastForward:
            # Someone pushed meanwhile: keep their commit, put ours on top of it.
            head = repo.head(branch)
            if head is None:
                raise GitHubError(
                    "the branch was deleted during the sync", reason="validation", retryable=True
                ) from None
            head_tree = repo.commit_tree(head)
    raise GitHubError(
        f"the branch kept moving ({MAX_REBUILDS} rebuilds); retried later", reason="branch_moving", retryable=True
    )


def _needs_blob(content: bytes) -> bool:
    if len(content) > INLINE_LIMIT:
        return True
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _entries(repo: Repository, files: dict[str, bytes]) -> list[dict]:
    entries = []
    for path, content in sorted(files.items()):
        entry = {"path": path, "mode": "100644", "type": "blob"}
        if _needs_blob(content):
            entry["sha"] = repo.create_blob(content)
        else:
            entry["content"] = content.decode("utf-8")
        entries.append(entry)
    return entries


def _first_commit(repo: Repository, *, branch: str, folder: str, files: dict[str, bytes], message: str) -> str:
    """An empty repository takes no Git Data request: its first commit is one of the project's own files."""
    if not files:
        raise GitHubError("the project has no files to put in the empty repository", reason="validation",
                          retryable=False)  # fmt: skip
    first = min(files)
    path = f"{folder}/{first}" if folder else first
    repo.put_file(path=path, content=files[first], message=message, branch=branch)
    head = repo.head(branch)
    if head is None:  # the Contents API put it on the default branch
        head = repo.head(repo.default_branch())
    return head
