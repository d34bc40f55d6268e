"""Git's object ids, computed locally: the same bytes git hashes, so an unchanged sync needs no write.

A blob's id is ``sha1("blob <size>\\0" + content)``; a tree's is the sha1 of its sorted
entries (``<mode> <name>\\0`` and the 20-byte id of each), directories sorting as if
their name ended in ``/``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

FILE_MODE = "100644"
TREE_MODE = "40000"  # git writes no leading zero; GitHub's API spells it 040000


def blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


def tree_sha(entries: Mapping[str, tuple[str, str]]) -> str:
    """The id of a tree of ``{name: (mode, sha)}``."""

    def order(name: str) -> bytes:
        mode = entries[name][0]
        return (name + "/" if mode == TREE_MODE else name).encode()

    body = b"".join(
        f"{entries[name][0]} {name}".encode() + b"\0" + bytes.fromhex(entries[name][1])
        for name in sorted(entries, key=order)
    )
    return hashlib.sha1(b"tree %d\0" % len(body) + body, usedforsecurity=False).hexdigest()


def folder_tree_sha(files: Mapping[str, bytes]) -> str:
    """The id of the tree holding ``{relative path: content}`` (paths with ``/`` make subtrees)."""
    root: dict = {}
    for path, content in files.items():
        *dirs, name = path.split("/")
        node = root
        for part in dirs:
            node = node.setdefault(part, {})
        node[name] = content

    def build(node: dict) -> str:
        entries = {
            name: (TREE_MODE, build(value)) if isinstance(value, dict) else (FILE_MODE, blob_sha(value))
            for name, value in node.items()
        }
        return tree_sha(entries)

    return build(root)
