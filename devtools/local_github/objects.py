"""Git's objects as GitHub keeps them for one repository: blobs, trees and commits under their real ids.

Blob and tree ids come from ``integrations.github.gitobjects`` (the bytes git
hashes); a commit's id is the sha1 of git's commit object::

    tree <sha>
    parent <sha>            (one line per parent)
    author Name <email> <unix time> +0000
    committer Name <email> <unix time> +0000

    <message>

Trees are immutable: ``graft`` writes the new trees an edit needs and returns the
new root, as GitHub's ``POST /git/trees`` with ``base_tree`` does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from integrations.github.gitobjects import FILE_MODE, TREE_MODE, blob_sha, tree_sha

EXECUTABLE_MODE = "100755"
SYMLINK_MODE = "120000"
BLOB_MODES = frozenset({FILE_MODE, EXECUTABLE_MODE, SYMLINK_MODE})
EMPTY_TREE = tree_sha({})

Entries = dict[str, tuple[str, str]]  # name -> (mode as git hashes it, sha)


class BadObject(ValueError):
    """An edit GitHub would refuse with 422; the message is GitHub's."""


@dataclass(frozen=True)
class Signature:
    name: str
    email: str
    when: datetime

    def line(self) -> str:
        offset = self.when.utcoffset() or timedelta(0)
        sign = "-" if offset < timedelta(0) else "+"
        minutes = abs(int(offset.total_seconds())) // 60
        return f"{self.name} <{self.email}> {int(self.when.timestamp())} {sign}{minutes // 60:02d}{minutes % 60:02d}"

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "email": self.email, "date": f"{self.when.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"}

    @classmethod
    def parse(cls, value: dict, *, default: Signature) -> Signature:
        """GitHub's ``author``/``committer`` object: name, email and an optional ISO 8601 date."""
        try:
            when = datetime.fromisoformat(value["date"].replace("Z", "+00:00")) if value.get("date") else default.when
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return cls(str(value["name"]), str(value["email"]), when)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise BadObject("Invalid request.\n\nauthor and committer need a name and an email") from exc


@dataclass(frozen=True)
class Commit:
    sha: str
    tree: str
    parents: tuple[str, ...]
    author: Signature
    committer: Signature
    message: str


def commit_bytes(tree: str, parents: tuple[str, ...], author: Signature, committer: Signature, message: str) -> bytes:
    lines = [f"tree {tree}", *(f"parent {p}" for p in parents), f"author {author.line()}"]
    lines.append(f"committer {committer.line()}")
    return ("\n".join(lines) + "\n\n" + message).encode()


def split_path(path: object) -> list[str]:
    if not isinstance(path, str) or not path or path.startswith("/") or path.endswith("/"):
        raise BadObject("tree.path contains a malformed path component")
    parts = path.split("/")
    if any(p in ("", ".", "..") or p.lower() == ".git" or "\0" in p for p in parts):
        raise BadObject("tree.path contains a malformed path component")
    return parts


class ObjectStore:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.trees: dict[str, Entries] = {EMPTY_TREE: {}}
        self.commits: dict[str, Commit] = {}

    def kind(self, sha: str) -> str | None:
        for kind, table in (("blob", self.blobs), ("tree", self.trees), ("commit", self.commits)):
            if sha in table:
                return kind
        return None

    def put_blob(self, content: bytes) -> str:
        sha = blob_sha(content)
        self.blobs[sha] = content
        return sha

    def put_tree(self, entries: Entries) -> str:
        sha = tree_sha(entries)
        self.trees[sha] = dict(entries)
        return sha

    def put_commit(
        self, *, tree: str, parents: list[str], author: Signature, committer: Signature, message: str
    ) -> Commit:
        if tree not in self.trees:
            raise BadObject("Tree SHA does not exist")
        if any(p not in self.commits for p in parents):
            raise BadObject("Parent SHA does not exist or is not a commit object")
        raw = commit_bytes(tree, tuple(parents), author, committer, message)
        sha = hashlib.sha1(b"commit %d\0" % len(raw) + raw, usedforsecurity=False).hexdigest()
        commit = Commit(sha, tree, tuple(parents), author, committer, message)
        self.commits[sha] = commit
        return commit

    def graft(self, root: str | None, parts: list[str], value: tuple[str, str] | None) -> str:
        """The tree ``root`` with ``parts`` set to ``(mode, sha)`` (None: removed); missing folders are created.

        A folder left empty disappears, as git keeps no empty trees.
        """
        entries = dict(self.trees[root]) if root else {}
        name, rest = parts[0], parts[1:]
        if rest:
            current = entries.get(name)
            if current is not None and current[0] != TREE_MODE:
                raise BadObject(f"tree.path {name!r} is a file, not a folder")
            if current is None and value is None:
                return self.put_tree(entries)
            value = (TREE_MODE, self.graft(current[1] if current else None, rest, value))
            if value[1] == EMPTY_TREE:
                value = None
        if value is None:
            entries.pop(name, None)
        else:
            entries[name] = value
        return self.put_tree(entries)

    def walk(self, tree: str, *, recursive: bool, prefix: str = "") -> Iterator[tuple[str, str, str]]:
        """``(path, mode, sha)`` of the entries of ``tree`` in git's order, subtrees before their contents."""
        entries = self.trees[tree]
        for name in sorted(entries, key=lambda n: n + "/" if entries[n][0] == TREE_MODE else n):
            mode, sha = entries[name]
            yield prefix + name, mode, sha
            if recursive and mode == TREE_MODE:
                yield from self.walk(sha, recursive=True, prefix=f"{prefix}{name}/")

    def files(self, tree: str) -> dict[str, bytes]:
        return {path: self.blobs[sha] for path, mode, sha in self.walk(tree, recursive=True) if mode != TREE_MODE}

    def lookup(self, tree: str, path: str) -> tuple[str, str] | None:
        """``(mode, sha)`` at ``path`` (``""``: the tree itself) under ``tree``."""
        current = (TREE_MODE, tree)
        for part in [p for p in path.split("/") if p]:
            if current[0] != TREE_MODE or part not in self.trees[current[1]]:
                return None
            current = self.trees[current[1]][part]
        return current

    def descends(self, commit: str, ancestor: str) -> bool:
        """Whether ``ancestor`` is ``commit`` or one of its ancestors: what a fast-forward needs."""
        seen, todo = set(), [commit]
        while todo:
            sha = todo.pop()
            if sha == ancestor:
                return True
            if sha not in seen:
                seen.add(sha)
                todo.extend(self.commits[sha].parents)
        return False
